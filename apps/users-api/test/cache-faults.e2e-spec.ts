import { startRedisServer } from '../../../test/support/redis-server.js';
import { TcpProxy } from '../../../test/support/tcp-proxy.js';
import type { Redis } from 'ioredis';
import { CacheRuntime } from '../../../libs/cache/src/cache.runtime.js';
import { startUsersApi } from './users-app.js';
import { readUntil } from '../../../test/support/wait.js';

describe('cache Redis faults in users-api (a paused redis-server, real PostgreSQL)', () => {
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let proxy: TcpProxy;
  let api: Awaited<ReturnType<typeof startUsersApi>>;

  beforeAll(async () => {
    redis = await startRedisServer();
    // Through a proxy: blocking it fails every command at once (none waits to run later).
    proxy = await TcpProxy.start(Number(new URL(redis.url).port));
    api = await startUsersApi('cache_faults', { redisUrl: proxy.url(redis.url) });
  });

  afterAll(async () => {
    await api?.stop();
    await proxy?.stop();
    await redis?.kill();
  });

  it('issue 11 item 2: a hash invalidation Redis missed while it was away is run when it answers', async () => {
    const user = (await api.http().post('/users').send({ email: 'hash-pause@example.com', name: 'Before' }).expect(201)).body;
    // Cached as a hash (once the CDC notification of the INSERT, which evicts it, has come and gone).
    const cached = await readUntil(
      () => api.http().get(`/users/${user.id}/fields/name`).expect(200),
      (answer) => answer.headers['x-cache'] === 'HIT',
      5_000,
    );
    expect([cached.headers['x-cache'], cached.body.value]).toEqual(['HIT', 'Before']);

    proxy.block();
    try {
      await api.http().put(`/users/${user.id}`).send({ email: 'hash-pause@example.com', name: 'After' }).expect(200);
      // One second away: the CDC notification of the update is handled while Redis is away too.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    } finally {
      proxy.unblock();
    }

    // Once Redis answers again, the hash cache serves again (HIT), and never the old name.
    const again = await readUntil(
      () => api.http().get(`/users/${user.id}/fields/name`).expect(200),
      (answer) => answer.headers['x-cache'] === 'HIT',
      8_000,
    );
    expect([again.headers['x-cache'], again.body.value]).toEqual(['HIT', 'After']);
  });

  it('issue 11 item 2: hash reads skip a Redis that stopped answering (the circuit breaker, or a write it missed, holds them off), and answer from PostgreSQL', async () => {
    const user = (await api.http().post('/users').send({ email: 'hash-breaker@example.com', name: 'Breaker' }).expect(201)).body;
    const cacheRedis = api.app.get(CacheRuntime, { strict: false }).redis as Redis;
    const sendCommand = cacheRedis.sendCommand;
    const sent: string[] = [];
    redis.pause();
    try {
      // The first reads pay the command timeout; their failures open the breaker, and the hash
      // fill Redis missed waits to be deleted there: until then no hash read asks Redis.
      for (let i = 0; i < 4; i++) await api.http().get(`/users/${user.id}/fields/name`).expect(200);
      cacheRedis.sendCommand = ((...args: Parameters<typeof sendCommand>) => {
        sent.push(args[0].name);
        return sendCommand.apply(cacheRedis, args);
      }) as typeof sendCommand;
      const answer = await api.http().get(`/users/${user.id}/fields/name`).expect(200);
      expect(answer.body.value).toBe('Breaker');
      expect(answer.headers['x-cache']).toBe('MISS');
      // Answered without reading Redis, so without waiting for it (a retry of the missed write may try it meanwhile).
      expect(sent.filter((name) => name === 'hget' || name === 'hgetall')).toEqual([]);
    } finally {
      cacheRedis.sendCommand = sendCommand;
      redis.resume();
    }
  });
});
