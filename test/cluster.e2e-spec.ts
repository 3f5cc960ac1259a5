import { CacheService } from '@cachekit/cache';
import { Cluster, Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { startUsersApiCluster, type UsersApi } from '../apps/users-api/test/users-app.js';
import { type Address, type ClusterTopology, startCluster } from './support/redis-topologies.js';
import { REDIS_URL } from './support/services.js';
import { eventually, VISIBLE_MS, within } from './support/wait.js';
import { WorkerProcess } from './support/worker-process.js';

const ADMIN_TOKEN = 'cluster-admin';
/** The user read sleeps this long in PostgreSQL: concurrent misses overlap, so a stampede is a real one. */
const READ_DELAY_MS = 200;

/** The sum of `name{namespace="users",...}` series in a Prometheus text. */
function usersSeries(text: string, name: string, labels = ''): number {
  const line = new RegExp(`^${name}\\{namespace="users"${labels}[^}]*\\} (\\d+(?:\\.\\d+)?)$`, 'gm');
  let total = 0;
  for (const match of text.matchAll(line)) total += Number(match[1]);
  return total;
}

describe('issue 12: the cache on a Redis Cluster (3 primaries, 3 replicas), two users-api instances and a worker', () => {
  let redis: ClusterTopology;
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;
  let worker: WorkerProcess | undefined;
  let admin: Cluster;
  let sql: pg.Client;
  let a: UsersApi;
  let b: UsersApi;
  const ids: number[] = [];

  const entryKey = (key: string) => `${cluster.config.cacheKeyPrefix}{users:${key}}`;
  const get = (instance: UsersApi, path: string) => instance.http().get(path).expect(200);
  const nameOn = async (instance: UsersApi, id: number) => (await get(instance, `/users/${id}`)).body.name as string;
  const xCache = async (instance: UsersApi, path: string) => (await get(instance, path)).headers['x-cache'] as string;
  /** This instance's `/metrics` text (its own registry: the two instances share this process). */
  const metricsOf = async (instance: UsersApi) => (await instance.app.get(CacheService).metrics()).body;
  const loads = async () => {
    let total = 0;
    for (const instance of [a, b]) total += usersSeries(await metricsOf(instance), 'cache_loads_total');
    return total;
  };

  /** HIT on both instances (so in both L1s, and in the cluster). */
  const warmBoth = async (id: number) => {
    for (const instance of [a, b]) {
      await get(instance, `/users/${id}`);
      expect(await xCache(instance, `/users/${id}`)).toBe('HIT');
    }
  };

  beforeAll(async () => {
    redis = await startCluster();
    cluster = await startUsersApiCluster('cluster', 2, {
      cacheRedis: { cluster: { nodes: redis.nodes } },
      queueRedisUrl: REDIS_URL,
      cacheAdminToken: ADMIN_TOKEN,
      usersReadDelayMs: READ_DELAY_MS,
    });
    [a, b] = cluster.instances;
    worker = await WorkerProcess.start({
      DATABASE_URL: cluster.databaseUrl,
      REDIS_URL,
      QUEUE_REDIS_URL: REDIS_URL,
      REDIS_CLUSTER_NODES: redis.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
      CACHE_KEY_PREFIX: cluster.config.cacheKeyPrefix,
      CACHE_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    admin = new Cluster(redis.nodes, { redisOptions: { connectTimeout: 1_000, commandTimeout: 2_000 } });
    admin.on('error', () => undefined); // the failover test kills a node under it
    await admin.ping(); // connected: it knows the primaries
    sql = new pg.Client({ connectionString: cluster.databaseUrl });
    await sql.connect();
    for (let i = 0; i < 12; i++) {
      ids.push(
        (
          await a
            .http()
            .post('/users')
            .send({ email: `c${i}@example.com`, name: `user ${i}` })
            .expect(201)
        ).body.id,
      );
    }
    // Both CDC listeners are up once both have seen a notification of their own.
    for (const instance of [a, b]) await within(5_000, async () => /cdc_listener_up 1/.test(await metricsOf(instance)));
  }, 60_000);

  afterAll(async () => {
    await worker?.kill();
    admin?.disconnect();
    await sql?.end();
    await cluster?.stop();
    await redis?.stop();
  });

  it('MISS then HIT; the entries of 12 users spread over at least two primaries', async () => {
    const [first] = ids;
    expect(await xCache(a, `/users/${first}`)).toBe('MISS');
    expect(await xCache(a, `/users/${first}`)).toBe('HIT');
    await Promise.all(ids.map((id) => get(a, `/users/${id}`)));
    const holders = new Map<number, number>();
    for (const node of admin.nodes('master')) {
      const keys = (await node.keys(`${cluster.config.cacheKeyPrefix}{users:user:*}`)).filter((key) => /\{users:user:\d+\}$/.test(key));
      if (keys.length) holders.set(node.options.port as number, keys.length);
    }
    expect([...holders.values()].reduce((sum, count) => sum + count, 0)).toBe(ids.length);
    expect(holders.size).toBeGreaterThanOrEqual(2);
  });

  it('a PUT on A is seen by B (not by TTL expiry: the bus and CDC)', async () => {
    const id = ids[1];
    await warmBoth(id);
    const put = await a.http().put(`/users/${id}`).send({ email: 'c1@example.com', name: 'renamed on A' }).expect(200);
    expect(put.body.name).toBe('renamed on A');
    await within(VISIBLE_MS, async () => (await nameOn(b, id)) === 'renamed on A');
  });

  it('an UPDATE made directly in SQL is seen by both instances (CDC)', async () => {
    for (const id of ids.slice(2, 5)) {
      await warmBoth(id);
      const name = `sql ${id} ${Date.now()}`;
      await sql.query('UPDATE users SET name = $1 WHERE id = $2', [name, id]);
      for (const instance of [a, b]) {
        await within(VISIBLE_MS, async () => (await nameOn(instance, id)) === name);
      }
    }
  });

  it('a cold-key stampede over both instances runs the loader once', async () => {
    const notified = async (instance: UsersApi) => Number(/^cdc_notifications_total (\d+)/m.exec(await metricsOf(instance))?.[1] ?? 0);
    const [aBefore, bBefore] = await Promise.all([notified(a), notified(b)]);
    const user = (await a.http().post('/users').send({ email: 'stampede@example.com', name: 'Stampede' }).expect(201)).body;
    // The INSERT's CDC eviction is in on both first: arriving mid-load, it would rightly keep that load from landing.
    await within(2_000, async () => (await notified(a)) > aBefore && (await notified(b)) > bBefore);
    const before = await loads();
    const lockWaits = async (instance: UsersApi) => usersSeries(await metricsOf(instance), 'cache_lock_waits_total');
    const waitsBefore = [await lockWaits(a), await lockWaits(b)];
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).http().get(`/users/${user.id}`)));
    expect(responses.map((response) => response.status)).toEqual(responses.map(() => 200));
    expect(responses.every((response) => response.body.name === 'Stampede')).toBe(true);
    expect(responses.every((response) => ['MISS', 'HIT'].includes(response.headers['x-cache'] as string))).toBe(true);
    expect((await loads()) - before).toBe(1);
    // The instance that did not load waited on the other's lock in the cluster (not just on its own single-flight).
    const waited = [(await lockWaits(a)) - waitsBefore[0], (await lockWaits(b)) - waitsBefore[1]];
    expect(waited.filter((count) => count > 0).length).toBeGreaterThanOrEqual(1);
  });

  it('list pages are tagged: a HIT until a user is created or updated, then read fresh', async () => {
    const page = '/users?limit=100&offset=0';
    await get(a, page);
    expect(await xCache(a, page)).toBe('HIT');
    await get(b, page);
    expect(await xCache(b, page)).toBe('HIT');

    const created = (await a.http().post('/users').send({ email: 'listed@example.com', name: 'Listed' }).expect(201)).body;
    const fresh = await get(a, page);
    expect(fresh.headers['x-cache']).toBe('MISS');
    expect(fresh.body.map((user: { id: number }) => user.id)).toContain(created.id);
    const seenOnB = async () => (await get(b, page)).body.some((user: { id: number }) => user.id === created.id);
    await within(VISIBLE_MS, seenOnB);

    const id = ids[5];
    await b.http().put(`/users/${id}`).send({ email: 'c5@example.com', name: 'renamed in a page' }).expect(200);
    const nameInPage = async (instance: UsersApi) =>
      (await get(instance, page)).body.find((user: { id: number }) => user.id === id).name as string;
    expect(await nameInPage(b)).toBe('renamed in a page');
    await within(VISIBLE_MS, async () => (await nameInPage(a)) === 'renamed in a page');
  });

  it('/cache/invalidate with the admin token makes the next read a MISS on both instances', async () => {
    const id = ids[6];
    await warmBoth(id);
    await a
      .http()
      .post('/cache/invalidate')
      .send({ namespace: 'users', keys: [`user:${id}`] })
      .expect(401);
    const busBefore = usersSeries(await metricsOf(b), 'cache_invalidations_total', ',source="bus"');
    const answer = await a
      .http()
      .post('/cache/invalidate')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ namespace: 'users', keys: [`user:${id}`] })
      .expect(200);
    expect(answer.body.namespace).toBe('users');
    expect(answer.body.deleted).toBeGreaterThanOrEqual(1);
    expect(await admin.exists(entryKey(`user:${id}`))).toBe(0);
    // B has dropped its L1 copy once the bus message is in; then both read at once (one load, one waiter).
    await within(VISIBLE_MS, async () => usersSeries(await metricsOf(b), 'cache_invalidations_total', ',source="bus"') > busBefore);
    const statuses = await Promise.all([a, b].map((instance) => xCache(instance, `/users/${id}`)));
    expect(statuses).toEqual(['MISS', 'MISS']);
    expect(await Promise.all([a, b].map((instance) => xCache(instance, `/users/${id}`)))).toEqual(['HIT', 'HIT']);
  });

  it('write-behind: a settings write accepted by users-api is persisted by the worker, and the cache shows it', async () => {
    const id = ids[7];
    const settings = { theme: 'cluster', at: Date.now() };
    const accepted = await a.http().patch(`/users/${id}/settings`).send(settings).expect(202);
    expect(accepted.body).toMatchObject({ id, settings, mode: 'queued' });
    // Read-your-writes on both instances before the worker necessarily ran.
    for (const instance of [a, b]) expect((await get(instance, `/users/${id}/settings`)).body).toEqual(settings);

    const persisted = await eventually(async () => {
      const { rows } = await sql.query('SELECT settings, settings_version::text AS sv FROM users WHERE id = $1', [id]);
      return isDeepStrictEqual(rows[0]?.settings, settings) && Number(rows[0]?.sv) === accepted.body.version;
    }, 15_000);
    expect(persisted).toBe(true);
    const workerMetrics = await (await fetch(`http://127.0.0.1:${worker!.port}/metrics`)).text();
    expect(workerMetrics).toMatch(/^write_behind_jobs_total\{status="written"\} [1-9]/m);

    // The row changed (CDC evicts the user and its settings): both serve the persisted settings, from the cluster.
    for (const instance of [a, b]) {
      const seen = await eventually(async () => isDeepStrictEqual((await get(instance, `/users/${id}`)).body.settings, settings), 5_000);
      expect(seen).toBe(true);
      expect((await get(instance, `/users/${id}/settings`)).body).toEqual(settings);
    }
    // The settings entry in the cluster holds them (read again if a late CDC eviction took it meanwhile).
    const inCluster = await eventually(async () => {
      await get(a, `/users/${id}/settings`);
      const cached = await admin.get(entryKey(`user:${id}:settings`));
      return cached !== null && isDeepStrictEqual(JSON.parse(cached).v, settings);
    }, 5_000);
    expect(inCluster).toBe(true);
  });

  it('failover: reads keep answering while a replica takes over the slot, then a PUT on A reaches B', async () => {
    const id = ids[8];
    await warmBoth(id);
    // Users no instance has read yet: each is read once during the failover, past L1, so some of
    // these reads meet the dead primary (a third of the slots) and must be answered from PostgreSQL.
    const cold: number[] = [];
    for (let i = 0; i < 40; i++) {
      cold.push(
        (
          await a
            .http()
            .post('/users')
            .send({ email: `cold${i}@example.com`, name: `cold ${i}` })
            .expect(201)
        ).body.id,
      );
    }
    const key = entryKey(`user:${id}`);
    const slot = (await admin.call('CLUSTER', 'KEYSLOT', key)) as number;
    const killed = await redis.killPrimaryOf(key);

    /** The port of the primary that a live node says serves `slot`. */
    const primaryOfSlot = async (): Promise<number | undefined> => {
      for (const node of redis.nodes.filter((each: Address) => each.port !== killed.port)) {
        const client = new Redis({
          ...node,
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        client.on('error', () => undefined);
        try {
          await client.connect();
          const ranges = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
          return ranges.find(([from, to]) => from <= slot && slot <= to)?.[2][1];
        } catch {
          // that node is not answering: ask another
        } finally {
          client.disconnect();
        }
      }
      return undefined;
    };

    // Every read answers while the replica takes over (L1, then PostgreSQL), and for a while after.
    const statuses: number[] = [];
    const caches: string[] = [];
    const coldReads: Array<{ status: number; cache: string; name: string }> = [];
    const readBoth = async () => {
      for (const instance of [a, b]) {
        const response = await instance.http().get(`/users/${id}`);
        statuses.push(response.status);
        caches.push(String(response.headers['x-cache']));
      }
      const coldId = cold.shift();
      if (coldId !== undefined) {
        const response = await b.http().get(`/users/${coldId}`);
        coldReads.push({ status: response.status, cache: String(response.headers['x-cache']), name: response.body.name });
      }
    };
    const started = Date.now();
    const promoted = await eventually(async () => {
      await readBoth();
      const port = await primaryOfSlot();
      return port !== undefined && port !== killed.port;
    }, 15_000);
    const promotedAfterMs = Date.now() - started;
    expect(promoted).toBe(true);
    const settle = Date.now() + 2_000;
    while (Date.now() < settle) await readBoth();
    console.log(
      `cluster failover: slot ${slot} promoted after ${promotedAfterMs} ms; ${statuses.length} reads: ` +
        `statuses ${JSON.stringify(count(statuses))}, X-Cache ${JSON.stringify(count(caches))}; ` +
        `${coldReads.length} cold reads: statuses ${JSON.stringify(count(coldReads.map((read) => read.status)))}`,
    );
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(coldReads.length).toBeGreaterThan(0);
    expect(coldReads.filter((read) => read.status !== 200 || read.cache !== 'MISS' || !read.name.startsWith('cold '))).toEqual([]);

    // Once the new primary serves, a PUT on A reaches B from Redis again: a HIT of a name B never
    // loaded itself (a new name each time, so no L1 copy of B's can answer it).
    const email = 'c8@example.com';
    let attempt = 0;
    const reachable = await eventually(async () => {
      const name = `After ${++attempt}`;
      const put = await a.http().put(`/users/${id}`).send({ email, name });
      if (put.status !== 200) return false;
      const read = await get(b, `/users/${id}`);
      return read.body.name === name && read.headers['x-cache'] === 'HIT';
    }, 20_000);
    expect(reachable).toBe(true);
    await a.http().put(`/users/${id}`).send({ email, name: 'Again' }).expect(200);
    await within(VISIBLE_MS, async () => (await nameOn(b, id)) === 'Again');
    expect(await eventually(async () => (await admin.exists(key).catch(() => 0)) === 1, 10_000)).toBe(true);
  }, 60_000);
});

function count(values: Array<string | number>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
