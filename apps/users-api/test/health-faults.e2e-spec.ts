import { Redis } from 'ioredis';
import { startRedisServer } from '../../../test/support/redis-server.js';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from '../../../test/support/services.js';
import { TcpProxy } from '../../../test/support/tcp-proxy.js';
import { loadConfig } from '../src/config/app.config.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';
import { startInstance, startUsersApi, type UsersApi } from './users-app.js';

const timed = async <T>(run: () => PromiseLike<T>): Promise<{ result: T; ms: number }> => {
  const started = Date.now();
  const result = await run();
  return { result, ms: Date.now() - started };
};

describe('health under faults (real PostgreSQL and Redis)', () => {
  describe('cache Redis down', () => {
    let redis: Awaited<ReturnType<typeof startRedisServer>>;
    let api: Awaited<ReturnType<typeof startUsersApi>>;

    beforeAll(async () => {
      redis = await startRedisServer();
      api = await startUsersApi('health_faults_redis', { redisUrl: redis.url });
    });

    afterAll(async () => {
      await api?.stop();
      await redis?.kill();
    });

    it('keeps /health/ready at 200 (degraded) and keeps serving users from L1 and from PostgreSQL', async () => {
      const notifications = async () =>
        sampleValue(parsePrometheusText((await api.http().get('/metrics').expect(200)).text), 'cdc_notifications_total') ?? 0;
      const before = await notifications();
      const cached = (await api.http().post('/users').send({ email: 'cached@example.com', name: 'Cached' }).expect(201)).body;
      const uncached = (await api.http().post('/users').send({ email: 'uncached@example.com', name: 'Uncached' }).expect(201)).body;
      // Let CDC evict for both INSERTs first, so that a late notification cannot empty L1 below.
      const deadline = Date.now() + 5_000;
      while ((await notifications()) < before + 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));

      expect((await api.http().get('/health/ready').expect(200)).body).toMatchObject({
        status: 'ok',
        details: { cache: { status: 'up', redis: 'up', bus: 'up', degraded: false } },
      });
      expect((await api.http().get(`/users/${cached.id}`).expect(200)).headers['x-cache']).toBe('MISS');
      expect((await api.http().get(`/users/${cached.id}`).expect(200)).headers['x-cache']).toBe('HIT');

      await redis.kill();

      const ready = await timed(() => api.http().get('/health/ready'));
      expect(ready.result.status).toBe(200);
      expect(ready.result.body).toMatchObject({
        status: 'degraded',
        error: {},
        details: {
          database: { status: 'up' },
          cache: { status: 'up', redis: 'down', degraded: true, message: expect.any(String), l1Entries: expect.any(Number) },
          cdc: { status: 'up', listener: 'up' },
        },
      });
      expect(ready.result.body.details.cache.l1Entries).toBeGreaterThanOrEqual(1);
      expect(['down', 'up']).toContain(ready.result.body.details.cache.bus);

      const fromL1 = await timed(() => api.http().get(`/users/${cached.id}`));
      expect(fromL1.result.status).toBe(200);
      expect(fromL1.result.headers['x-cache']).toBe('HIT');
      expect(fromL1.result.body).toMatchObject({ id: cached.id, email: cached.email, name: cached.name, version: cached.version });

      const fromDatabase = await timed(() => api.http().get(`/users/${uncached.id}`));
      expect(fromDatabase.result.status).toBe(200);
      expect(fromDatabase.result.headers['x-cache']).toBe('MISS');
      expect(fromDatabase.result.body).toMatchObject({
        id: uncached.id,
        email: uncached.email,
        name: uncached.name,
        version: uncached.version,
      });

      // the operations routes keep answering: the Redis INFO figures are left out, not failed
      const metrics = await api.http().get('/metrics').expect(200);
      const samples = parsePrometheusText(metrics.text);
      expect(sampleValue(samples, 'redis_used_memory_bytes')).toBeUndefined();
      expect(sampleValue(samples, 'redis_keyspace_hits')).toBeUndefined();
      expect(sampleValue(samples, 'cache_hits_total', { namespace: 'users', layer: 'l1' })).toBeGreaterThanOrEqual(2);
      const stats = await api.http().get('/cache/stats').expect(200);
      expect(stats.body.redis).toEqual({
        available: false,
        keyspace_hits: null,
        keyspace_misses: null,
        used_memory: null,
        evicted_keys: null,
      });
      await api.http().get('/health/live').expect(200);
    });
  });

  describe('PostgreSQL down (for this app only, through a proxy)', () => {
    let proxy: TcpProxy;
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let api: UsersApi;
    let shared: Redis;

    beforeAll(async () => {
      proxy = await TcpProxy.start(5432);
      database = await createTestDatabase('health_faults_pg');
      const viaProxy = new URL(database.url);
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      api = await startInstance({
        ...loadConfig({}),
        databaseUrl: viaProxy.toString(),
        redisUrl: REDIS_URL,
        cacheKeyPrefix: uniquePrefix('health_faults_pg'),
      });
      shared = new Redis(REDIS_URL);
    });

    afterAll(async () => {
      proxy?.unblock();
      await api?.close();
      await proxy?.stop();
      await database?.drop();
      if (shared) {
        if (api) await dropPrefix(shared, api.config.cacheKeyPrefix);
        await shared.quit();
      }
    });

    it('answers /health/ready 503 while PostgreSQL is unreachable or hanging, and 200 once it is back', async () => {
      // The CDC listener connects just after start-up; until then readiness is 200 but `degraded`.
      const settled = Date.now() + 5_000;
      let ready = await api.http().get('/health/ready').expect(200);
      while (ready.body.status !== 'ok' && Date.now() < settled) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        ready = await api.http().get('/health/ready').expect(200);
      }
      expect(ready.body).toMatchObject({ status: 'ok', details: { database: { status: 'up' }, cdc: { listener: 'up' } } });

      proxy.block();
      const refused = await timed(() => api.http().get('/health/ready'));
      expect(refused.result.status).toBe(503);
      expect(refused.result.body).toMatchObject({
        status: 'error',
        error: { database: { status: 'down', message: expect.any(String) } },
        details: { database: { status: 'down' }, cache: { status: 'up', redis: 'up' } },
      });
      // liveness is not readiness: the process still runs
      await api.http().get('/health/live').expect(200);
      // A request that needs the database answers 503 in JSON, not 500.
      const needsDatabase = await api.http().get('/users/987123').expect(503);
      expect(needsDatabase.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });

      proxy.stall();
      const hanging = await timed(() => api.http().get('/health/ready'));
      expect(hanging.result.status).toBe(503);
      expect(hanging.result.body).toMatchObject({
        status: 'error',
        error: { database: { status: 'down', message: expect.stringMatching(/timeout/) } },
      });
      // The health check's own 1 s timeout answered (its message says so), not a hang.
      expect(hanging.ms).toBeGreaterThanOrEqual(900);

      proxy.unblock();
      const deadline = Date.now() + 5_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = (await api.http().get('/health/ready')).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe(200);
    });
  });
});
