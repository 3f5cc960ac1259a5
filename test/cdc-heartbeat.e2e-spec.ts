import { CacheService } from '@cachekit/cache';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startInstance, type UsersApi } from '../apps/users-api/test/users-app.js';
import { loadConfig } from '../apps/users-api/src/config/app.config.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';
import { within } from './support/wait.js';

describe('issue 11 item 7: a LISTEN connection that goes silent is noticed (users-api reaching PostgreSQL through a freezing proxy)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniquePrefix('cdc_heartbeat');
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let proxy: TcpProxy;
  let api: UsersApi;
  let sql: pg.Client;
  const ids: number[] = [];

  const metric = async (name: string) => {
    const line = (await api.app.get(CacheService).metrics()).body.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1] ?? NaN);
  };
  const nameOf = async (id: number) => (await api.http().get(`/users/${id}`).expect(200)).body.name as string;

  beforeAll(async () => {
    database = await createTestDatabase('cdc_heartbeat');
    const { port } = new URL(database.url);
    proxy = await TcpProxy.start(Number(port || 5432));
    // The app's defaults: a heartbeat every 5 s with a 2 s timeout.
    api = await startInstance({
      ...loadConfig({}),
      databaseUrl: proxy.url(database.url),
      redisUrl: REDIS_URL,
      cacheRedis: { url: REDIS_URL },
      cacheKeyPrefix: prefix,
    });
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    for (let i = 0; i < 3; i++) {
      ids.push(
        (
          await api
            .http()
            .post('/users')
            .send({ email: `hb${i}@example.com`, name: `before ${i}` })
            .expect(201)
        ).body.id,
      );
    }
    // Its start-up resync and the INSERTs' notifications, applied: none can evict what the test caches.
    await api.cdcCaughtUp();
  });

  afterAll(async () => {
    proxy?.thaw();
    await sql?.end();
    await api?.close();
    await proxy?.stop();
    await database?.drop();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('issue 11 item 7: path frozen, rows updated directly meanwhile: the heartbeat marks the listener down, and after the thaw it reconnects, resyncs and every entry is fresh', async () => {
    for (const id of ids) {
      await nameOf(id);
      expect((await api.http().get(`/users/${id}`)).headers['x-cache']).toBe('HIT');
    }
    expect(await metric('cdc_listener_up')).toBe(1);
    const resyncs = await metric('cdc_resyncs_total');

    proxy.freeze();
    for (const id of ids) await sql.query('UPDATE users SET name = $1 WHERE id = $2', [`while silent ${id}`, id]);
    // Nothing was closed: only the heartbeat can tell (5 s interval + 2 s timeout, and slack).
    const noticedMs = await within(10_000, async () => (await metric('cdc_listener_up')) === 0);
    // Still frozen: the cached copies are the old ones (the notifications are stuck on the path).
    expect((await api.http().get(`/users/${ids[0]}`)).body.name).toBe('before 0');

    proxy.thaw();
    const backMs = await within(
      10_000,
      async () => (await metric('cdc_listener_up')) === 1 && (await metric('cdc_resyncs_total')) > resyncs,
    );
    for (const id of ids) expect(await nameOf(id)).toBe(`while silent ${id}`);
    console.log(`issue 11 item 7: silent LISTEN connection noticed after ${noticedMs} ms; up and resynced ${backMs} ms after the thaw`);
  });
});
