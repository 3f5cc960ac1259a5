import { jest } from '@jest/globals';
import { WriteBehindQueue, writeBehindQueueAddress } from '@cachekit/cache/write-behind';
import { USER_SETTINGS_ENTITY } from '@cachekit/users-domain';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { startInstance, startUsersApiCluster, type UsersApi } from '../apps/users-api/test/users-app.js';
import { startRedisServer } from './support/redis-server.js';
import { REDIS_URL } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { within } from './support/wait.js';
import { WorkerProcess } from './support/worker-process.js';

/**
 * Write-behind under faults (issue 11 items 4, 6 and 11), against the built worker, a queue Redis
 * of this file's own (a throwaway redis-server) and PostgreSQL or the queue cut off through a TCP proxy.
 */
describe('write-behind under faults: jobless pending writes, skewed clocks, PostgreSQL away', () => {
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;
  let queueServer: Awaited<ReturnType<typeof startRedisServer>>;
  let queueRedis: Redis;
  let jobs: Queue;
  let sql: pg.Client;
  const workers: WorkerProcess[] = [];
  const extra: UsersApi[] = [];
  const proxies: TcpProxy[] = [];

  const startWorker = async (databaseUrl = cluster.databaseUrl) => {
    const worker = await WorkerProcess.start({
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      QUEUE_REDIS_URL: queueServer.url,
      CACHE_KEY_PREFIX: cluster.config.cacheKeyPrefix,
    });
    workers.push(worker);
    return worker;
  };
  const stopWorkers = async () => {
    for (const worker of workers.splice(0)) await worker.kill('SIGTERM');
  };

  const createUser = async (tag: string): Promise<number> =>
    (
      await cluster.instances[0]
        .http()
        .post('/users')
        .send({ email: `${tag}-${Math.random().toString(36).slice(2)}@example.com`, name: tag })
        .expect(201)
    ).body.id;

  const row = async (id: number) =>
    (await sql.query('SELECT settings, settings_version::text AS sv FROM users WHERE id = $1', [id])).rows[0] as
      { settings: object; sv: string } | undefined;

  const settingsKey = (id: number) => `user:${id}:settings`;
  /** The pending write of a user, as the queue Redis holds it. */
  const pendingOf = (id: number) => cluster.instances[0].app.get(WriteBehindQueue).pending('users', settingsKey(id));
  const active = async () => {
    const counts = await jobs.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return counts.waiting + counts.active + counts.delayed + counts.prioritized;
  };

  beforeAll(async () => {
    queueServer = await startRedisServer();
    queueRedis = new Redis(queueServer.url);
    cluster = await startUsersApiCluster('wb_faults', 1, { queueRedisUrl: queueServer.url });
    const address = writeBehindQueueAddress(cluster.config.cacheKeyPrefix);
    jobs = new Queue(address.name, { connection: queueRedis, prefix: address.prefix });
    sql = new pg.Client({ connectionString: cluster.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await stopWorkers();
    for (const api of extra) await api.close();
    for (const proxy of proxies) await proxy.stop();
    await jobs?.close();
    await sql?.end();
    await cluster?.stop();
    queueRedis?.disconnect();
    await queueServer?.kill();
  });

  it('issue 11 item 4: a pending write is served only while it is newer than the row, and never for a deleted user', async () => {
    const [api] = cluster.instances;
    const producer = api.app.get(WriteBehindQueue);
    const [newer, deleted] = [await createUser('rows-newer'), await createUser('row-deleted')];
    // Pending values whose job was never added: the first round trip of accepting ran, the second did not.
    for (const id of [newer, deleted]) {
      await producer.accept({ namespace: 'users', key: settingsKey(id), entity: USER_SETTINGS_ENTITY, id }, { theme: 'jobless' });
      expect((await api.http().get(`/users/${id}/settings`).expect(200)).body).toEqual({ theme: 'jobless' });
    }
    const { version } = (await pendingOf(newer))!;
    // The row moves past the pending version elsewhere (another service, psql); the other user goes.
    await sql.query(`UPDATE users SET settings = '{"theme":"from the database"}', settings_version = $1 WHERE id = $2`, [
      version + 1,
      newer,
    ]);
    await api.http().delete(`/users/${deleted}`).expect(204);

    expect((await api.http().get(`/users/${newer}/settings`).expect(200)).body).toEqual({ theme: 'from the database' });
    await api.http().get(`/users/${deleted}/settings`).expect(404);
  });

  it("issue 11 item 4: the worker's sweeper queues a pending write that has no job: it is persisted, or dropped for a deleted user", async () => {
    const [api] = cluster.instances;
    const producer = api.app.get(WriteBehindQueue);
    await startWorker();
    const [kept, gone] = [await createUser('jobless-kept'), await createUser('jobless-gone')];
    const accepted = await producer.accept(
      { namespace: 'users', key: settingsKey(kept), entity: USER_SETTINGS_ENTITY, id: kept },
      { theme: 'accepted, never queued' },
    );
    await producer.accept({ namespace: 'users', key: settingsKey(gone), entity: USER_SETTINGS_ENTITY, id: gone }, { theme: 'orphan' });
    await api.http().delete(`/users/${gone}`).expect(204);
    expect(await active()).toBe(0); // no job for either
    expect((await api.http().get(`/users/${kept}/settings`).expect(200)).body).toEqual({ theme: 'accepted, never queued' });

    // Due 5 s after accepting, swept every 2 s: persisted with the version it was accepted with.
    const ms = await within(15_000, async () => (await row(kept))?.sv === String(accepted));
    expect((await row(kept))!.settings).toEqual({ theme: 'accepted, never queued' });
    await within(5_000, async () => (await pendingOf(kept)) === undefined && (await pendingOf(gone)) === undefined);
    expect((await jobs.getFailed()).map((job) => job.data.id)).toContain(gone);
    expect((await api.http().get(`/users/${kept}/settings`).expect(200)).body).toEqual({ theme: 'accepted, never queued' });
    await api.http().get(`/users/${gone}/settings`).expect(404);
    process.stdout.write(`issue 11 item 4: a jobless pending write was persisted ${ms} ms after it was accepted\n`);
  }, 30_000);

  it('issue 11 item 6: with an app clock 2 s behind or ahead of the queue Redis, the write acknowledged last is the one persisted', async () => {
    await stopWorkers(); // the queued writes below wait for the worker started at the end
    const realNow = Date.now.bind(Date);
    const proxy = await TcpProxy.start(Number(new URL(queueServer.url).port));
    proxies.push(proxy);
    const [behind, ahead] = [await createUser('clock-behind'), await createUser('clock-ahead')];
    const [queuedBy] = cluster.instances; // reaches the queue Redis directly, never falls back
    const patch = (api: UsersApi, id: number, settings: object, status: number) =>
      api.http().patch(`/users/${id}/settings`).send(settings).expect(status);
    /** An instance whose clock is `ms` off (the process's Date.now), its queue Redis behind `proxy`, cut off from it. */
    const skewedAndCutOff = async (ms: number) => {
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() + ms);
      const api = await startInstance({ ...cluster.config, queueRedisUrl: proxy.url(queueServer.url) });
      extra.push(api);
      proxy.block();
      await within(5_000, async () => !(await api.app.get(WriteBehindQueue).ping()));
      return api;
    };
    try {
      // Queued on one instance (the queue's clock), then written at once by one 2 s behind whose queue is away.
      const slow = await skewedAndCutOff(-2_000);
      await patch(queuedBy, behind, { step: 1, path: 'queued' }, 202);
      expect((await patch(slow, behind, { step: 2, path: 'written' }, 200)).body.mode).toBe('written');
      proxy.unblock();
      await slow.close();
      jest.restoreAllMocks();

      // Written at once by one 2 s ahead whose queue is away, then queued on another.
      const fast = await skewedAndCutOff(2_000);
      await patch(fast, ahead, { step: 1, path: 'written' }, 200);
      await patch(queuedBy, ahead, { step: 2, path: 'queued' }, 202);
      proxy.unblock();
      await fast.close();
    } finally {
      jest.restoreAllMocks();
    }

    await startWorker();
    await within(15_000, async () => (await active()) === 0 && !(await pendingOf(behind)) && !(await pendingOf(ahead)));
    expect((await row(behind))!.settings).toEqual({ step: 2, path: 'written' });
    expect((await row(ahead))!.settings).toEqual({ step: 2, path: 'queued' });
    expect((await queuedBy.http().get(`/users/${behind}/settings`).expect(200)).body).toEqual({ step: 2, path: 'written' });
    expect((await queuedBy.http().get(`/users/${ahead}/settings`).expect(200)).body).toEqual({ step: 2, path: 'queued' });
  }, 30_000);

  it('issue 11 item 11: with PostgreSQL unreachable, PATCH settings is accepted (202) and every acknowledged write lands after it returns', async () => {
    await stopWorkers();
    const database = await TcpProxy.start(Number(new URL(cluster.databaseUrl).port || 5432));
    proxies.push(database);
    const api = await startInstance({ ...cluster.config, databaseUrl: database.url(cluster.databaseUrl) });
    extra.push(api);
    // The worker reaches PostgreSQL through the same proxy: it keeps retrying through the outage.
    await startWorker(database.url(cluster.databaseUrl));
    const ids: number[] = [];
    for (let i = 0; i < 10; i++) ids.push(await createUser(`outage-${i}`));
    const unknownId = 987_654;

    database.block();
    const last = new Map<number, object>();
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        ids.map(async (id) => {
          const settings = { round, during: 'outage', id };
          const response = await api.http().patch(`/users/${id}/settings`).send(settings);
          expect({ id, status: response.status, mode: response.body.mode }).toEqual({ id, status: 202, mode: 'queued' });
          last.set(id, settings);
        }),
      );
    }
    // An id the instance cannot check while PostgreSQL is away: accepted, then settled by the worker.
    await api.http().patch(`/users/${unknownId}/settings`).send({ never: 'persisted' }).expect(202);
    // Read-your-writes holds during the outage.
    expect((await api.http().get(`/users/${ids[0]}/settings`).expect(200)).body).toEqual(last.get(ids[0]));
    // The worker has tried a few times and is backing off.
    await within(15_000, async () => (await jobs.getDelayed()).some((job) => job.attemptsMade >= 3));

    database.unblock();
    const ms = await within(25_000, async () => {
      const { rows } = await sql.query('SELECT id, settings FROM users WHERE id = ANY($1)', [ids]);
      return (
        rows.length === ids.length && rows.every((r: { id: number; settings: object }) => isDeepStrictEqual(r.settings, last.get(r.id)))
      );
    });
    await within(10_000, async () => (await pendingOf(unknownId)) === undefined);
    expect((await jobs.getFailed()).map((job) => job.data.id)).toContain(unknownId);
    await api.http().get(`/users/${unknownId}/settings`).expect(404);
    for (const id of ids) expect((await api.http().get(`/users/${id}/settings`).expect(200)).body).toEqual(last.get(id));
    process.stdout.write(`issue 11 item 11: ${ids.length * 2} writes accepted during the outage, all persisted ${ms} ms after it ended\n`);
  }, 40_000);
});
