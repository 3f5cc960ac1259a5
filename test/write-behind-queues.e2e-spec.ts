import { keyPart } from '@cachekit/cache';
import { writeBehindQueueAddress } from '@cachekit/cache/write-behind';
import { USER_SETTINGS_ENTITY } from '@cachekit/users-domain';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { startUsersApiCluster } from '../apps/users-api/test/users-app.js';
import { startRedisServer } from './support/redis-server.js';
import { REDIS_URL } from './support/services.js';
import { within } from './support/wait.js';
import { WorkerProcess } from './support/worker-process.js';

/** The queue and key prefix every deployment shared up to 0.2 (BullMQ's defaults). */
const LEGACY = { name: 'write-behind', prefix: 'bull' };

type Cluster = Awaited<ReturnType<typeof startUsersApiCluster>>;

/**
 * Issue 11 item 5: two deployments (their own key prefix and database) on one queue Redis, each
 * with its own built worker; and jobs left in the queue every deployment shared up to 0.2.
 */
describe('write-behind queues per deployment on one queue Redis', () => {
  let queueServer: Awaited<ReturnType<typeof startRedisServer>>;
  let queueRedis: Redis;
  let legacy: Queue;
  const deployments: Array<{ cluster: Cluster; sql: pg.Client; jobs: Queue; worker?: WorkerProcess }> = [];

  beforeAll(async () => {
    queueServer = await startRedisServer();
    queueRedis = new Redis(queueServer.url, { maxRetriesPerRequest: null });
    legacy = new Queue(LEGACY.name, { connection: queueRedis, prefix: LEGACY.prefix });
    for (const label of ['wb_deploy_a', 'wb_deploy_b']) {
      const cluster = await startUsersApiCluster(label, 1, { queueRedisUrl: queueServer.url });
      const sql = new pg.Client({ connectionString: cluster.databaseUrl });
      await sql.connect();
      const address = writeBehindQueueAddress(cluster.config.cacheKeyPrefix);
      deployments.push({ cluster, sql, jobs: new Queue(address.name, { connection: queueRedis, prefix: address.prefix }) });
    }
  });

  afterAll(async () => {
    for (const { cluster, sql, jobs, worker } of deployments) {
      await worker?.kill('SIGTERM');
      await jobs.close();
      await sql.end();
      await cluster.stop();
    }
    await legacy?.close();
    queueRedis?.disconnect();
    await queueServer?.kill();
  });

  const createUsers = async (cluster: Cluster, count: number, tag: string) => {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const response = await cluster.instances[0]
        .http()
        .post('/users')
        .send({ email: `${tag}${i}@example.com`, name: `${tag} ${i}` })
        .expect(201);
      ids.push(response.body.id);
    }
    return ids;
  };

  /** A write accepted by a producer up to 0.2: its pending record (without entity and id) and its job in the shared queue. */
  const leaveLegacyJob = async (keyPrefix: string, id: number, settings: object) => {
    const key = `user:${id}:settings`;
    const version = Date.now() * 1000;
    await queueRedis.set(`${keyPrefix}~wb:version:users:${key}`, String(version));
    await queueRedis.hset(`${keyPrefix}~wb:pending:users`, key, JSON.stringify({ v: version, value: settings }));
    const jobId = [keyPrefix, 'users', key, version].map((part) => keyPart(String(part))).join('.');
    await legacy.add(USER_SETTINGS_ENTITY, { namespace: 'users', key, entity: USER_SETTINGS_ENTITY, id, version }, { jobId, attempts: 12 });
    return jobId;
  };

  it('issue 11 item 5: each deployment persists every accepted write of its own, and drains its jobs from the shared queue used up to 0.2', async () => {
    const [a, b] = deployments;
    const [legacyUser] = await createUsers(a.cluster, 1, 'legacy');
    const legacyJob = await leaveLegacyJob(a.cluster.config.cacheKeyPrefix, legacyUser, { theme: 'left in the old queue' });
    // A third deployment, not upgraded yet (no worker here): its job must stay where its own workers look.
    const foreignJob = await leaveLegacyJob('t:not-upgraded:', 424_242, { theme: 'not ours' });

    for (const deployment of deployments) {
      deployment.worker = await WorkerProcess.start({
        DATABASE_URL: deployment.cluster.databaseUrl,
        REDIS_URL,
        QUEUE_REDIS_URL: queueServer.url,
        CACHE_KEY_PREFIX: deployment.cluster.config.cacheKeyPrefix,
      });
    }
    const ids = [await createUsers(a.cluster, 15, 'a'), await createUsers(b.cluster, 15, 'b')];
    const last = [new Map<number, object>(), new Map<number, object>()];
    for (let round = 0; round < 3; round++) {
      // Both deployments write at once, to the same queue Redis.
      await Promise.all(
        deployments.flatMap((deployment, d) =>
          ids[d].map(async (id) => {
            const settings = { round, deployment: d, id };
            await deployment.cluster.instances[0].http().patch(`/users/${id}/settings`).send(settings).expect(202);
            last[d].set(id, settings);
          }),
        ),
      );
    }

    for (const [d, { sql, jobs }] of deployments.entries()) {
      await within(15_000, async () => {
        const { rows } = await sql.query('SELECT id, settings FROM users WHERE id = ANY($1)', [ids[d]]);
        return (
          rows.length === ids[d].length &&
          rows.every((row: { id: number; settings: object }) => isDeepStrictEqual(row.settings, last[d].get(row.id)))
        );
      });
      expect((await jobs.getJobCounts('failed')).failed).toBe(0);
    }
    await within(10_000, async () => {
      const { rows } = await a.sql.query('SELECT settings FROM users WHERE id = $1', [legacyUser]);
      return isDeepStrictEqual(rows[0]?.settings, { theme: 'left in the old queue' });
    });
    expect(await legacy.getJob(legacyJob)).toBeUndefined();
    expect(await legacy.getJobState(foreignJob)).toBe('waiting');
  }, 40_000);
});
