import { Redis } from 'ioredis';
import pg from 'pg';
import { parsePrometheusText, sampleValue } from '../apps/users-api/test/prometheus-text.js';
import { startUsersApiCluster } from '../apps/users-api/test/users-app.js';
import { REDIS_URL } from './support/services.js';
import { untilClockPasses, VISIBLE_MS, within } from './support/wait.js';

/** This spec's write-behind queue has a Redis database of its own (no worker consumes it here). */
const queueUrl = (() => {
  const url = new URL(REDIS_URL);
  url.pathname = '/3';
  return url.toString();
})();

/**
 * Every series of DESIGN.md section 4 moves, on GET /metrics, for the action that should move it.
 * Two instances (A, B) share PostgreSQL and Redis; users are fresh for 400 ms, then in grace.
 */
describe('GET /metrics: each series moves for its action', () => {
  let cluster: Awaited<ReturnType<typeof startUsersApiCluster>>;
  let sql: pg.Client;
  let queueRedis: Redis;

  beforeAll(async () => {
    queueRedis = new Redis(queueUrl);
    await queueRedis.flushdb();
    cluster = await startUsersApiCluster('metrics_series', 2, { usersCacheTtlMs: 400, usersReadDelayMs: 60, queueRedisUrl: queueUrl });
    sql = new pg.Client({ connectionString: cluster.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await cluster?.stop();
    await queueRedis?.flushdb();
    await queueRedis?.quit();
  });

  const scrape = async (instance: 0 | 1) =>
    parsePrometheusText((await cluster.instances[instance].http().get('/metrics').expect(200)).text);
  const value = async (instance: 0 | 1, name: string, labels: Record<string, string> = {}) =>
    sampleValue(await scrape(instance), name, labels) ?? 0;
  const users = { namespace: 'users' };

  /** Creates a user and waits until both instances have applied its INSERT, so that no late CDC eviction blurs a count. */
  const createUser = async (name: string) => {
    const user = (
      await cluster.instances[0]
        .http()
        .post('/users')
        .send({ email: `${name}@example.com`, name })
        .expect(201)
    ).body as { id: number };
    await Promise.all(cluster.instances.map((instance) => instance.cdcCaughtUp()));
    return user;
  };

  it('misses, loads and their duration, L1 hits and size: GET /users/:id MISS then HIT', async () => {
    const { id } = await createUser('series-read');
    const before = {
      misses: await value(0, 'cache_misses_total', users),
      loads: await value(0, 'cache_loads_total', { ...users, outcome: 'success' }),
      durations: await value(0, 'cache_load_duration_seconds_count', users),
      hits: await value(0, 'cache_hits_total', { ...users, layer: 'l1' }),
    };
    await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    expect(await value(0, 'cache_misses_total', users)).toBe(before.misses + 1);
    expect(await value(0, 'cache_loads_total', { ...users, outcome: 'success' })).toBe(before.loads + 1);
    expect(await value(0, 'cache_load_duration_seconds_count', users)).toBe(before.durations + 1);
    expect(await value(0, 'cache_load_duration_seconds_sum', users)).toBeGreaterThanOrEqual(0.06);
    expect(await value(0, 'cache_hits_total', { ...users, layer: 'l1' })).toBe(before.hits + 1);
    expect(await value(0, 'cache_l1_entries')).toBeGreaterThan(0);
    expect(await value(0, 'cache_l1_bytes')).toBeGreaterThan(0);
  });

  it('an L2 hit on B for what A loaded', async () => {
    const { id } = await createUser('series-l2');
    await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    const before = await value(1, 'cache_hits_total', { ...users, layer: 'l2' });
    await cluster.instances[1].http().get(`/users/${id}`).expect(200);
    expect(await value(1, 'cache_hits_total', { ...users, layer: 'l2' })).toBe(before + 1);
  });

  it('stale served within grace', async () => {
    const { id } = await createUser('series-stale');
    await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    await untilClockPasses(Date.now() + 400); // past the 400 ms TTL of the entry that answer stored, within its grace
    const before = await value(0, 'cache_stale_served_total', users);
    const stale = await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(await value(0, 'cache_stale_served_total', users)).toBe(before + 1);
  });

  it('early refreshes (XFetch) on hits close to expiry', async () => {
    const { id } = await createUser('series-xfetch');
    const before = await value(0, 'cache_early_refreshes_total', users);
    await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    // Hits in the last 200 ms before expiry; with a 60 ms load each refreshes early with p >= e^-3.3.
    await untilClockPasses(Date.now() + 200);
    for (let i = 0; i < 40; i++) await cluster.instances[0].http().get(`/users/${id}`).expect(200);
    expect(await value(0, 'cache_early_refreshes_total', users)).toBeGreaterThan(before);
  });

  it('lock waits: B waits for the load A holds the lock for', async () => {
    const { id } = await createUser('series-lock');
    const before = (await value(0, 'cache_lock_waits_total', users)) + (await value(1, 'cache_lock_waits_total', users));
    const [a, b] = await Promise.all(cluster.instances.map((instance) => instance.http().get(`/users/${id}`)));
    expect([a.status, b.status]).toEqual([200, 200]);
    const after = (await value(0, 'cache_lock_waits_total', users)) + (await value(1, 'cache_lock_waits_total', users));
    expect(after).toBe(before + 1);
  });

  it('invalidations by source: api (DELETE), tag (the pages), bus (on B), cdc (the trigger)', async () => {
    const { id } = await createUser('series-invalidate');
    const before = {
      api: await value(0, 'cache_invalidations_total', { ...users, source: 'api' }),
      tag: await value(0, 'cache_invalidations_total', { ...users, source: 'tag' }),
      bus: await value(1, 'cache_invalidations_total', { ...users, source: 'bus' }),
      cdc: await value(0, 'cache_invalidations_total', { ...users, source: 'cdc' }),
      notifications: await value(0, 'cdc_notifications_total'),
    };
    await cluster.instances[0].http().delete(`/users/${id}`).expect(204);
    expect(await value(0, 'cache_invalidations_total', { ...users, source: 'api' })).toBeGreaterThan(before.api);
    expect(await value(0, 'cache_invalidations_total', { ...users, source: 'tag' })).toBeGreaterThan(before.tag);
    await within(VISIBLE_MS, async () => (await value(1, 'cache_invalidations_total', { ...users, source: 'bus' })) > before.bus);
    await within(VISIBLE_MS, async () => (await value(0, 'cache_invalidations_total', { ...users, source: 'cdc' })) > before.cdc);
    expect(await value(0, 'cdc_notifications_total')).toBeGreaterThan(before.notifications);
    // A unit check (seconds, not milliseconds), not a speed bound: how fast is bench/cdc-visibility.bench.ts.
    expect(await value(0, 'cdc_lag_seconds')).toBeLessThan(VISIBLE_MS / 1000);
    expect(await value(0, 'cdc_listener_up')).toBe(1);
  });

  it('CDC resyncs after its LISTEN connection is killed', async () => {
    const before = await value(0, 'cdc_resyncs_total');
    await sql.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cachekit-cdc' AND datname = current_database()`,
    );
    await within(5000, async () => (await value(0, 'cdc_resyncs_total')) > before);
    expect(await value(0, 'cdc_listener_up')).toBe(1);
  });

  it('write-behind: accepted writes and the queue depth (no worker runs here)', async () => {
    const { id } = await createUser('series-wb');
    const before = {
      accepted: await value(0, 'write_behind_jobs_total', { status: 'accepted' }),
      depth: await value(0, 'write_behind_queue_depth'),
    };
    await cluster.instances[0].http().patch(`/users/${id}/settings`).send({ theme: 'queued' }).expect(202);
    expect(await value(0, 'write_behind_jobs_total', { status: 'accepted' })).toBe(before.accepted + 1);
    expect(await value(0, 'write_behind_queue_depth')).toBe(before.depth + 1);
  });
});
