import { CacheService } from '@cachekit/cache';
import { type Sample, parsePrometheusText, sampleValue } from './prometheus-text.js';
import { startInstance, startUsersApi, type UsersApi } from './users-app.js';

const TOKEN = 'operations-secret';

describe('users-api operations: /metrics, /health, /cache/stats, /cache/invalidate (real PostgreSQL and Redis)', () => {
  let api: Awaited<ReturnType<typeof startUsersApi>>;
  let adminOff: UsersApi;
  let emailCount = 0;

  beforeAll(async () => {
    api = await startUsersApi('operations_e2e', { cacheAdminToken: TOKEN });
    // The same database and cache, without an admin token: the admin route is off.
    adminOff = await startInstance({ ...api.config, cacheAdminToken: undefined });
  });

  afterAll(async () => {
    await adminOff?.close();
    await api?.stop();
  });

  const scrape = async (): Promise<Sample[]> => {
    const response = await api.http().get('/metrics').expect(200);
    return parsePrometheusText(response.text);
  };

  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels) ?? 0;

  /** A new user whose INSERT notification both instances have applied: a late one cannot evict what a test caches next. */
  const createUser = async (name: string) => {
    const user = (
      await api
        .http()
        .post('/users')
        .send({ email: `ops${++emailCount}@example.com`, name })
        .expect(201)
    ).body;
    await Promise.all([api.cdcCaughtUp(), adminOff.cdcCaughtUp()]);
    return user as { id: number; name: string };
  };

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  describe('GET /metrics', () => {
    it('answers Prometheus text with the process, cache, CDC and Redis INFO series', async () => {
      const response = await api.http().get('/metrics').expect(200);
      expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const samples = parsePrometheusText(response.text);
      const names = new Set(samples.map((sample) => sample.name));
      // the app's own default metrics, in its own registry
      expect(names).toContain('process_cpu_user_seconds_total');
      expect(names).toContain('nodejs_heap_size_used_bytes');
      for (const name of ['redis_keyspace_hits', 'redis_keyspace_misses', 'redis_used_memory_bytes', 'redis_evicted_keys']) {
        const figure = sampleValue(samples, name);
        expect({ name, figure }).toEqual({ name, figure: expect.any(Number) });
        expect(figure).toBeGreaterThanOrEqual(0);
      }
      expect(sampleValue(samples, 'redis_used_memory_bytes')).toBeGreaterThan(0);
      expect(sampleValue(samples, 'cache_l1_entries')).toEqual(expect.any(Number));
      expect(sampleValue(samples, 'cache_l1_bytes')).toEqual(expect.any(Number));
      // each series appears once: the merge did not duplicate a registry
      expect(response.text.match(/^# TYPE cache_hits_total /gm)).toHaveLength(1);
    });

    it('reports the CDC listener up', async () => {
      const deadline = Date.now() + 5_000;
      while (sampleValue(await scrape(), 'cdc_listener_up') !== 1 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 25));
      expect(sampleValue(await scrape(), 'cdc_listener_up')).toBe(1);
    });

    it('moves the miss, load, L1 hit and L1 size series as GET /users/:id goes MISS then HIT', async () => {
      const user = await createUser('Metered');
      const before = await scrape();
      expect((await api.http().get(`/users/${user.id}`).expect(200)).headers['x-cache']).toBe('MISS');
      const afterMiss = await scrape();
      expect(value(afterMiss, 'cache_misses_total', { namespace: 'users' })).toBe(
        value(before, 'cache_misses_total', { namespace: 'users' }) + 1,
      );
      expect(value(afterMiss, 'cache_loads_total', { namespace: 'users', outcome: 'success' })).toBe(
        value(before, 'cache_loads_total', { namespace: 'users', outcome: 'success' }) + 1,
      );
      expect(value(afterMiss, 'cache_hits_total', { namespace: 'users', layer: 'l1' })).toBe(
        value(before, 'cache_hits_total', { namespace: 'users', layer: 'l1' }),
      );
      expect(value(afterMiss, 'cache_load_duration_seconds_count', { namespace: 'users' })).toBe(
        value(before, 'cache_load_duration_seconds_count', { namespace: 'users' }) + 1,
      );
      expect(value(afterMiss, 'cache_l1_entries')).toBe(value(before, 'cache_l1_entries') + 1);
      expect(value(afterMiss, 'cache_l1_bytes')).toBeGreaterThan(value(before, 'cache_l1_bytes'));

      expect((await api.http().get(`/users/${user.id}`).expect(200)).headers['x-cache']).toBe('HIT');
      const afterHit = await scrape();
      expect(value(afterHit, 'cache_hits_total', { namespace: 'users', layer: 'l1' })).toBe(
        value(afterMiss, 'cache_hits_total', { namespace: 'users', layer: 'l1' }) + 1,
      );
      expect(value(afterHit, 'cache_misses_total', { namespace: 'users' })).toBe(
        value(afterMiss, 'cache_misses_total', { namespace: 'users' }),
      );
      expect(value(afterHit, 'cache_loads_total', { namespace: 'users', outcome: 'success' })).toBe(
        value(afterMiss, 'cache_loads_total', { namespace: 'users', outcome: 'success' }),
      );
    });

    it('moves cdc_notifications_total and cache_invalidations_total{source="cdc"} on a row change', async () => {
      const before = await scrape();
      await createUser('Noticed');
      const after = await scrape();
      expect(value(after, 'cdc_notifications_total')).toBe(value(before, 'cdc_notifications_total') + 1);
      expect(value(after, 'cache_invalidations_total', { namespace: 'users', source: 'cdc' })).toBeGreaterThan(
        value(before, 'cache_invalidations_total', { namespace: 'users', source: 'cdc' }),
      );
    });
  });

  describe('GET /health/live and /health/ready', () => {
    it('live answers 200 while the process runs', async () => {
      const response = await api.http().get('/health/live').expect(200);
      expect(response.body).toMatchObject({ status: 'ok' });
    });

    it('ready answers 200 with the database up and the cache and CDC details', async () => {
      const response = await api.http().get('/health/ready').expect(200);
      expect(response.headers['cache-control']).toMatch(/no-cache/);
      expect(response.body).toMatchObject({
        status: 'ok',
        error: {},
        details: {
          database: { status: 'up' },
          cache: { status: 'up', redis: 'up', bus: 'up', degraded: false, l1Entries: expect.any(Number), l1Bytes: expect.any(Number) },
          cdc: { status: 'up', listener: 'up', degraded: false },
        },
      });
      expect(Object.keys(response.body.info).sort()).toEqual(['cache', 'cdc', 'database']);
    });
  });

  describe('GET /cache/stats', () => {
    it('answers hit ratios per namespace and layer, the L1 size and the Redis INFO figures', async () => {
      const user = await createUser('Counted');
      await api.http().get(`/users/${user.id}`).expect(200); // MISS
      await api.http().get(`/users/${user.id}`).expect(200); // HIT (L1)
      const response = await api.http().get('/cache/stats').expect(200);
      const stats = response.body;
      expect(stats).toEqual({
        namespaces: expect.any(Object),
        total: expect.any(Object),
        l1: { entries: expect.any(Number), bytes: expect.any(Number) },
        redis: {
          available: true,
          keyspace_hits: expect.any(Number),
          keyspace_misses: expect.any(Number),
          used_memory: expect.any(Number),
          evicted_keys: expect.any(Number),
        },
      });
      expect(stats.l1.entries).toBeGreaterThanOrEqual(1);
      expect(stats.l1.bytes).toBeGreaterThan(0);
      const users = stats.namespaces.users;
      expect(users).toEqual({
        hits: { l1: expect.any(Number), l2: expect.any(Number) },
        misses: expect.any(Number),
        stale: expect.any(Number),
        lookups: users.hits.l1 + users.hits.l2 + users.misses + users.stale,
        hitRatio: expect.any(Number),
        layers: { l1: { hitRatio: expect.any(Number) }, l2: { hitRatio: expect.any(Number) } },
      });
      expect(users.hits.l1).toBeGreaterThanOrEqual(1);
      expect(users.misses).toBeGreaterThanOrEqual(1);
      expect(users.hitRatio).toBeCloseTo((users.hits.l1 + users.hits.l2) / users.lookups, 3);
      expect(users.layers.l1.hitRatio).toBeCloseTo(users.hits.l1 / users.lookups, 3);
      expect(users.layers.l2.hitRatio).toBeCloseTo(users.hits.l2 / (users.lookups - users.hits.l1), 3);
      expect(stats.total.lookups).toBeGreaterThanOrEqual(users.lookups);

      // the ratios follow the counters: one more L1 hit
      await api.http().get(`/users/${user.id}`).expect(200);
      const next = (await api.http().get('/cache/stats').expect(200)).body.namespaces.users;
      expect(next.hits.l1).toBe(users.hits.l1 + 1);
      expect(next.lookups).toBe(users.lookups + 1);
    });
  });

  describe('POST /cache/invalidate', () => {
    it('answers 401 in JSON without a token or with a wrong one, before looking at the body', async () => {
      const body = { namespace: 'users', keys: ['user:1'] };
      const missing = await api.http().post('/cache/invalidate').send(body).expect(401);
      expect(missing.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
      for (const authorization of [
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        'Bearer ',
        `Basic ${TOKEN}`,
        TOKEN,
        `Bearer ${TOKEN} extra`,
      ]) {
        const wrong = await api.http().post('/cache/invalidate').set('Authorization', authorization).send(body).expect(401);
        expect(wrong.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      }
      // a bad body without the token is still a 401: nothing is said about the route's input
      await api.http().post('/cache/invalidate').send({ nonsense: true }).expect(401);
    });

    it('with the token: evicts the key (next read is a MISS) and moves cache_invalidations_total{source="api"}', async () => {
      const user = await createUser('Evicted');
      await api.http().get(`/users/${user.id}`).expect(200);
      expect((await api.http().get(`/users/${user.id}`).expect(200)).headers['x-cache']).toBe('HIT');
      const redisKey = `${api.config.cacheKeyPrefix}{users:user:${user.id}}`;
      expect(await api.redis.exists(redisKey)).toBe(1);
      const before = await scrape();

      const response = await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ namespace: 'users', keys: [`user:${user.id}`] })
        .expect(200);
      expect(response.body).toEqual({ namespace: 'users', deleted: 1 });
      expect(await api.redis.exists(redisKey)).toBe(0);
      const after = await scrape();
      expect(value(after, 'cache_invalidations_total', { namespace: 'users', source: 'api' })).toBe(
        value(before, 'cache_invalidations_total', { namespace: 'users', source: 'api' }) + 1,
      );
      const next = await api.http().get(`/users/${user.id}`).expect(200);
      expect(next.headers['x-cache']).toBe('MISS');
      expect(next.body).toMatchObject({ id: user.id, name: 'Evicted' });
    });

    it('takes keys literally: a key with `*` is no pattern and evicts nothing else', async () => {
      const user = await createUser('Literal');
      await api.http().get(`/users/${user.id}`).expect(200);
      const response = await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ namespace: 'users', keys: ['user:*', 'user:?'] })
        .expect(200);
      expect(response.body).toEqual({ namespace: 'users', deleted: 0 });
      expect((await api.http().get(`/users/${user.id}`).expect(200)).headers['x-cache']).toBe('HIT');
    });

    it('evicts by tag: the cached user pages go', async () => {
      await createUser('Listed');
      await api.http().get('/users?limit=5').expect(200);
      expect((await api.http().get('/users?limit=5').expect(200)).headers['x-cache']).toBe('HIT');
      const response = await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ namespace: 'users', tags: ['list'] })
        .expect(200);
      expect(response.body.namespace).toBe('users');
      expect(response.body.deleted).toBeGreaterThanOrEqual(1);
      expect((await api.http().get('/users?limit=5').expect(200)).headers['x-cache']).toBe('MISS');
    });

    it('uses the default namespace when none is given', async () => {
      const cache = api.app.get(CacheService);
      await cache.set('greeting', 'hello');
      expect(await cache.get('greeting')).toBe('hello');
      const response = await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ keys: ['greeting'] })
        .expect(200);
      expect(response.body).toEqual({ namespace: 'default', deleted: 1 });
      expect(await cache.get('greeting')).toBeUndefined();
    });

    it('refuses a bad body with a JSON 400', async () => {
      const bad: unknown[] = [
        {},
        { namespace: 'users' },
        { keys: [] },
        { keys: [], tags: [] },
        { keys: [''] },
        { keys: ['x'.repeat(1025)] },
        { keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) },
        { tags: Array.from({ length: 1001 }, (_, i) => `t${i}`) },
        { keys: 'user:1' },
        { keys: [1] },
        { namespace: 'no spaces', keys: ['a'] },
        { namespace: '', keys: ['a'] },
        { namespace: 'x'.repeat(65), keys: ['a'] },
        { keys: ['a'], patterns: ['user:*'] },
        [1, 2],
      ];
      for (const body of bad) {
        const response = await api
          .http()
          .post('/cache/invalidate')
          .set(bearer(TOKEN))
          .send(body as object);
        expect({ body, status: response.status }).toEqual({ body, status: 400 });
        expect(response.body).toMatchObject({ statusCode: 400, message: 'Validation failed' });
        expect(response.body.issues.length).toBeGreaterThan(0);
      }
      const malformed = await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .set('Content-Type', 'application/json')
        .send('{"keys": ')
        .expect(400);
      expect(malformed.body).toMatchObject({ statusCode: 400 });
      // the limits themselves are accepted
      await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ keys: Array.from({ length: 1000 }, (_, i) => `k${i}`) })
        .expect(200);
      await api
        .http()
        .post('/cache/invalidate')
        .set(bearer(TOKEN))
        .send({ keys: ['x'.repeat(1024)], tags: ['t'.repeat(1024)] })
        .expect(200);
    });

    it('is off (404, as an unknown route) when no admin token is configured', async () => {
      for (const headers of [{}, bearer(TOKEN), bearer('')]) {
        const response = await adminOff
          .http()
          .post('/cache/invalidate')
          .set(headers)
          .send({ namespace: 'users', keys: ['user:1'] })
          .expect(404);
        expect(response.body).toMatchObject({ statusCode: 404, error: 'Not Found', message: 'Cannot POST /cache/invalidate' });
      }
      // the rest of the operations routes still answer there
      await adminOff.http().get('/cache/stats').expect(200);
      await adminOff.http().get('/metrics').expect(200);
    });
  });
});
