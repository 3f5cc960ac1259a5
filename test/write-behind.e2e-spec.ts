import { startInstance, startUsersApiCluster } from '../apps/users-api/test/users-app.js';
import { writeBehindQueueAddress } from '@cachekit/cache/write-behind';
import { persistUserSettings } from '@cachekit/users-domain';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { REDIS_URL } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { within } from './support/wait.js';
import { WorkerProcess } from './support/worker-process.js';

/** This spec's queue lives in a Redis database of its own, so no other spec's jobs meet its workers. */
const QUEUE_DB = 2;
const queueUrl = (() => {
  const url = new URL(REDIS_URL);
  url.pathname = `/${QUEUE_DB}`;
  return url.toString();
})();

describe('write-behind through BullMQ with real worker processes', () => {
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;
  let queueRedis: Redis;
  let queue: Queue;
  let sql: pg.Client;
  const workers: WorkerProcess[] = [];

  const startWorker = async (databaseUrl = cluster.databaseUrl) => {
    const worker = await WorkerProcess.start({
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      QUEUE_REDIS_URL: queueUrl,
      CACHE_KEY_PREFIX: cluster.config.cacheKeyPrefix,
      CACHE_ADMIN_TOKEN: 'wb-admin',
    });
    workers.push(worker);
    return worker;
  };

  const drained = async (limitMs: number) => {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
      if (counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) return counts;
      if (Date.now() > deadline) throw new Error(`queue not drained: ${JSON.stringify(counts)}`);
      await sleep(100);
    }
  };

  const createUsers = async (count: number, tag: string) => {
    const ids: number[] = [];
    const [api] = cluster.instances;
    for (let i = 0; i < count; i++) {
      ids.push(
        (
          await api
            .http()
            .post('/users')
            .send({ email: `${tag}${i}@example.com`, name: `${tag} ${i}` })
            .expect(201)
        ).body.id,
      );
    }
    return ids;
  };

  const rows = async (ids: number[]) =>
    (await sql.query('SELECT id, settings, settings_version::text AS sv, version FROM users WHERE id = ANY($1) ORDER BY id', [ids]))
      .rows as Array<{
      id: number;
      settings: object;
      sv: string;
      version: number;
    }>;

  beforeAll(async () => {
    queueRedis = new Redis(queueUrl);
    await queueRedis.flushdb();
    cluster = await startUsersApiCluster('write_behind', 1, { queueRedisUrl: queueUrl });
    const address = writeBehindQueueAddress(cluster.config.cacheKeyPrefix);
    queue = new Queue(address.name, { connection: queueRedis, prefix: address.prefix });
    sql = new pg.Client({ connectionString: cluster.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    for (const worker of workers) await worker.kill();
    await queue?.close();
    await sql?.end();
    await cluster?.stop();
    await queueRedis?.flushdb();
    await queueRedis?.quit();
  });

  it('100 users x 20 writes with the worker SIGKILLed half way: every row ends at its last accepted write, coalesced, none failed', async () => {
    const [api] = cluster.instances;
    const ids = await createUsers(100, 'wb');
    const worker = await startWorker();
    const last = new Map<number, { settings: object; version: number }>();
    let restarted: Promise<WorkerProcess> | undefined;
    for (let round = 0; round < 20; round++) {
      // Killed half way (jobs in flight stay "active" until the next worker finds them stalled);
      // writes go on meanwhile, queue up, and coalesce.
      if (round === 10) await worker.kill('SIGKILL');
      if (round === 14) restarted = startWorker();
      // Interleaved: every user gets its round-r write before any gets round r+1.
      for (let i = 0; i < ids.length; i += 25) {
        await Promise.all(
          ids.slice(i, i + 25).map(async (id) => {
            const settings = { round, theme: `t-${id}-${round}` };
            const response = await api.http().patch(`/users/${id}/settings`).send(settings).expect(202);
            expect(response.body).toMatchObject({ id, settings, mode: 'queued' });
            last.set(id, { settings, version: response.body.version });
          }),
        );
      }
      // Read-your-writes, before any worker has necessarily run.
      const probe = ids[round % ids.length];
      expect((await api.http().get(`/users/${probe}/settings`).expect(200)).body).toEqual(last.get(probe)!.settings);
    }
    await restarted;
    const counts = await drained(60_000);
    expect(counts.failed).toBe(0);
    const final = await rows(ids);
    for (const row of final) {
      expect(row.settings).toEqual(last.get(row.id)!.settings);
      expect(Number(row.sv)).toBe(last.get(row.id)!.version);
    }
    const databaseWrites = final.reduce((sum, row) => sum + (row.version - 1), 0);
    expect(databaseWrites).toBeLessThan(100 * 20);
    expect(databaseWrites).toBeGreaterThanOrEqual(100);
    process.stdout.write(`write-behind: 2000 accepted writes, ${databaseWrites} database writes\n`);
  }, 120_000);

  it('PostgreSQL unreachable from the worker for several seconds: jobs retry and all land after it returns', async () => {
    for (const worker of workers) await worker.kill('SIGTERM');
    const [api] = cluster.instances;
    const ids = await createUsers(10, 'outage');
    const proxy = await TcpProxy.start(Number(new URL(cluster.databaseUrl).port || 5432));
    try {
      await startWorker(proxy.url(cluster.databaseUrl));
      proxy.block();
      const last = new Map<number, object>();
      for (let round = 0; round < 5; round++) {
        for (const id of ids) {
          const settings = { round, during: 'outage' };
          await api.http().patch(`/users/${id}/settings`).send(settings).expect(202);
          last.set(id, settings);
        }
        await sleep(800);
      }
      expect((await queue.getJobCounts('waiting', 'delayed', 'active')).delayed).toBeGreaterThan(0);
      proxy.unblock();
      const counts = await drained(60_000);
      expect(counts.failed).toBe(0);
      for (const row of await rows(ids)) expect(row.settings).toEqual(last.get(row.id));
    } finally {
      await proxy.stop();
    }
  }, 90_000);

  it('SIGTERM lets the job in flight finish before the worker exits', async () => {
    for (const worker of workers) await worker.kill('SIGTERM');
    const [api] = cluster.instances;
    const [id] = await createUsers(1, 'graceful');
    const worker = await startWorker();
    // Hold the row: the worker's UPDATE waits on the lock, so its job stays in flight.
    const blocker = new pg.Client({ connectionString: cluster.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [id]);
      await api.http().patch(`/users/${id}/settings`).send({ theme: 'graceful' }).expect(202);
      await within(5000, async () => (await queue.getJobCounts('active')).active === 1);
      const exited = new Promise<number | null>((done) => worker.child.once('exit', (code) => done(code)));
      worker.child.kill('SIGTERM');
      await sleep(500);
      expect(worker.child.exitCode).toBeNull(); // still finishing its job
      await blocker.query('COMMIT');
      await exited;
    } finally {
      await blocker.end();
    }
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
    expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    const [row] = await rows([id]);
    expect(row.settings).toEqual({ theme: 'graceful' });
  });

  it('rejects an older version delivered after a newer one', async () => {
    const [id] = await createUsers(1, 'order');
    const dataSource = cluster.instances[0].app.get(DataSource);
    expect(await persistUserSettings(dataSource, id, { v: 'new' }, 2_000)).toBe('written');
    expect(await persistUserSettings(dataSource, id, { v: 'old' }, 1_000)).toBe('stale');
    expect(await persistUserSettings(dataSource, id, { v: 'again' }, 2_000)).toBe('stale');
    expect(await persistUserSettings(dataSource, 987_654, { v: 'x' }, 3_000)).toBe('gone');
    const [row] = await rows([id]);
    expect(row.settings).toEqual({ v: 'new' });
  });

  it('with the queue Redis unreachable, PATCH still persists (write-through) and says so', async () => {
    const [id] = await createUsers(1, 'noqueue');
    const offline = await startInstance({ ...cluster.config, queueRedisUrl: 'redis://127.0.0.1:1' });
    try {
      const response = await offline.http().patch(`/users/${id}/settings`).send({ theme: 'persisted now' }).expect(200);
      expect(response.body).toMatchObject({ id, settings: { theme: 'persisted now' }, mode: 'written' });
      const [row] = await rows([id]);
      expect(row.settings).toEqual({ theme: 'persisted now' });
      expect((await offline.http().get(`/users/${id}/settings`).expect(200)).body).toEqual({ theme: 'persisted now' });
    } finally {
      await offline.close();
    }
  });

  it('serves one field from the hash object cache, updates it in place on PATCH, drops it on PUT', async () => {
    const [api] = cluster.instances;
    const [id] = await createUsers(1, 'fields');
    // The INSERT's CDC notification drops the hash: applied first, it cannot drop the fill below.
    await api.cdcCaughtUp();
    const miss = await api.http().get(`/users/${id}/fields/name`).expect(200);
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(miss.body).toEqual({ id, field: 'name', value: 'fields 0' });
    const hit = await api.http().get(`/users/${id}/fields/email`).expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body.value).toBe('fields0@example.com');
    const hashKey = `${cluster.config.cacheKeyPrefix}~hash:users:{${id}}`;
    const ttlBefore = await cluster.redis.pttl(hashKey);
    expect(ttlBefore).toBeGreaterThan(0);

    // Paused queue: the worker's UPDATE (whose CDC notification drops the hash) cannot race the read.
    await queue.pause();
    try {
      await api.http().patch(`/users/${id}/settings`).send({ theme: 'in place' }).expect(202);
      const settings = await api.http().get(`/users/${id}/fields/settings`).expect(200);
      expect(settings.headers['x-cache']).toBe('HIT');
      expect(settings.body.value).toEqual({ theme: 'in place' });
      expect(await cluster.redis.pttl(hashKey)).toBeLessThanOrEqual(ttlBefore); // TTL kept, not renewed
    } finally {
      await queue.resume();
    }

    await api.http().put(`/users/${id}`).send({ email: 'fields0@example.com', name: 'renamed' }).expect(200);
    const renamed = await api.http().get(`/users/${id}/fields/name`).expect(200);
    expect(renamed.headers['x-cache']).toBe('MISS');
    expect(renamed.body.value).toBe('renamed');

    await api.http().get(`/users/${id}/fields/password`).expect(400);
    await api.http().get('/users/987654/fields/name').expect(404);
  });

  it('a write that can never land (user deleted) fails once, shows in the dead letters, and stops being served', async () => {
    for (const worker of workers) await worker.kill('SIGTERM');
    const [api] = cluster.instances;
    const [id] = await createUsers(1, 'dead');
    await api.http().patch(`/users/${id}/settings`).send({ theme: 'orphan' }).expect(202);
    await api.http().delete(`/users/${id}`).expect(204);
    const worker = await startWorker();
    await drained(30_000);
    expect((await queue.getJobCounts('failed')).failed).toBe(1);
    const base = `http://127.0.0.1:${worker.port}/write-behind/dead-letters`;
    expect((await fetch(base)).status).toBe(401);
    const letters = (await (await fetch(base, { headers: { Authorization: 'Bearer wb-admin' } })).json()) as Array<{
      data: { id: number };
      failedReason: string;
      attemptsMade: number;
    }>;
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ data: { id }, attemptsMade: 1 });
    expect(letters[0].failedReason).toMatch(/no longer exists/);
    await api.http().get(`/users/${id}/settings`).expect(404);
  });

  it('answers 404 and 400 for bad settings requests', async () => {
    const [api] = cluster.instances;
    await api.http().patch('/users/987654/settings').send({ a: 1 }).expect(404);
    await api.http().patch('/users/abc/settings').send({ a: 1 }).expect(400);
    const [id] = await createUsers(1, 'badsettings');
    const bad = await api.http().patch(`/users/${id}/settings`).send([1, 2]).expect(400);
    expect(bad.body).toMatchObject({ statusCode: 400 });
    await api.http().patch(`/users/${id}/settings`).expect(400);
    await api.http().patch(`/users/${id}/settings`).set('Content-Type', 'text/plain').send('theme=dark').expect(400);
    await api.http().get('/users/987654/settings').expect(404);
  });
});
