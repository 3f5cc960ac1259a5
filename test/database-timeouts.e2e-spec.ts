import { Redis } from 'ioredis';
import { startInstance, type UsersApi } from '../apps/users-api/test/users-app.js';
import { loadConfig } from '../apps/users-api/src/config/app.config.js';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { within } from './support/wait.js';

/**
 * Far above the app's own bounds (3 s to connect, 5-6 s a statement): a request still running then
 * is a request that hangs. A 503 is the app's own answer, so it proves the request did not hang;
 * how soon it comes is logged, not asserted.
 */
const CLIENT_TIMEOUT_MS = 15_000;

describe('issue 11 item 12: requests that need a PostgreSQL that stopped answering fail fast with 503 (users-api behind a proxy)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = uniquePrefix('db_timeouts');
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const apps: UsersApi[] = [];
  const proxies: { stop(): Promise<void> }[] = [];

  const startBehind = async (proxy: TcpProxy) => {
    proxies.push(proxy);
    const api = await startInstance({
      ...loadConfig({}),
      databaseUrl: proxy.url(database.url),
      redisUrl: REDIS_URL,
      cacheKeyPrefix: prefix,
    });
    apps.push(api);
    return api;
  };

  /** The status of one request and how long it took; a hung request fails the test at CLIENT_TIMEOUT_MS. */
  const timed = async (send: () => Promise<{ status: number }>) => {
    const started = Date.now();
    const { status } = await send();
    return { status, ms: Date.now() - started };
  };

  beforeAll(async () => {
    database = await createTestDatabase('db_timeouts');
  });

  afterAll(async () => {
    // Proxies first: their connections dropped, closing an app never waits on a stalled one.
    for (const proxy of proxies) await proxy.stop();
    for (const api of apps) await api.close();
    await database?.drop();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('issue 11 item 12: the server stalls (connections accepted, never answered): GET and POST answer 503 (never hang), and the app recovers', async () => {
    const proxy = await TcpProxy.start(Number(new URL(database.url).port || 5432));
    const api = await startBehind(proxy);
    const { id } = (await api.http().post('/users').send({ email: 'stall@example.com', name: 'stall' }).expect(201)).body as { id: number };

    proxy.stall();
    const read = await timed(() => api.http().get(`/users/${id}`).timeout(CLIENT_TIMEOUT_MS));
    expect(read.status).toBe(503);
    const write = await timed(() => api.http().post('/users').send({ email: 'stall2@example.com', name: 'x' }).timeout(CLIENT_TIMEOUT_MS));
    expect(write.status).toBe(503);
    console.log(`issue 11 item 12: stalled server: GET answered 503 in ${read.ms} ms, POST in ${write.ms} ms`);

    proxy.unblock();
    await within(CLIENT_TIMEOUT_MS, async () => (await api.http().get(`/users/${id}`).timeout(CLIENT_TIMEOUT_MS)).status === 200);
  });

  it('issue 11 item 12: an open pooled connection goes silent mid-statement (a partition): the request answers 503 (never hangs), and the app recovers', async () => {
    const proxy = await TcpProxy.start(Number(new URL(database.url).port || 5432));
    const api = await startBehind(proxy);
    const [a, b] = [
      (await api.http().post('/users').send({ email: 'silent-a@example.com', name: 'a' }).expect(201)).body.id as number,
      (await api.http().post('/users').send({ email: 'silent-b@example.com', name: 'b' }).expect(201)).body.id as number,
    ];
    // The pool now holds open connections: the next read goes out on one of them.
    await api.http().get(`/users/${a}`).expect(200);

    proxy.freeze();
    const read = await timed(() => api.http().get(`/users/${b}`).timeout(CLIENT_TIMEOUT_MS));
    expect(read.status).toBe(503);
    console.log(`issue 11 item 12: silent connection: GET answered 503 in ${read.ms} ms`);

    proxy.thaw();
    await within(CLIENT_TIMEOUT_MS, async () => (await api.http().get(`/users/${b}`).timeout(CLIENT_TIMEOUT_MS)).status === 200);
  });
});
