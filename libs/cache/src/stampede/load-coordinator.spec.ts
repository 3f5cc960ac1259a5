import { createCache, keyPrefix as prefix, redis, runtimeOf } from '../../test-support/cache-factory.js';
import { heldLoader, latch, untilClockPasses, waitFor } from '../../test-support/wait.js';

describe('grace, fail-safe, timeouts and locks (real Redis)', () => {
  it('serves stale within grace at once and runs one background refresh', async () => {
    const cache = await createCache();
    const [refreshing, refreshed] = [latch(), latch()];
    let calls = 0;
    const loader = async () => {
      if (++calls === 1) return 1;
      refreshing.open();
      await refreshed.opened; // the refresh is held: whoever waits for it waits for the test
      return 2;
    };
    const options = { ttl: 100, grace: '10s' } as const;
    expect(await cache.getOrSet('swr', loader, options)).toBe(1);
    await untilClockPasses(Date.now() + 100);
    // Answered while the refresh is still held: none of them waited for the loader.
    const lookups = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSetWithStatus('swr', loader, options)));
    expect(lookups.every((l) => l.status === 'STALE' && l.value === 1)).toBe(true);
    await refreshing.opened;
    expect(calls).toBe(2); // one refresh for the twenty
    refreshed.open();
    await waitFor(async () => (await cache.get('swr')) === 2, { what: 'the refreshed value' });
    expect(calls).toBe(2);
    expect(await cache.getOrSetWithStatus('swr', loader, options)).toEqual({ value: 2, status: 'HIT', layer: 'l1' });
  });

  it('fail-safe: a failing loader with a value in grace serves stale, retried at most once per backoff', async () => {
    const cache = await createCache();
    let calls = 0;
    let failing = false;
    const loader = async () => {
      calls++;
      if (failing) throw new Error('database down');
      return 'good';
    };
    // Without stale-while-revalidate a lookup waits for the loader call it makes: once it answers, that call is over.
    const options = { ttl: 50, grace: '1m', failSafeBackoff: 500, staleWhileRevalidate: false } as const;
    const burst = async () => {
      for (let i = 0; i < 10; i++)
        expect(await cache.getOrSetWithStatus('fs', loader, options)).toMatchObject({ value: 'good', status: 'STALE' });
    };
    await cache.getOrSet('fs', loader, options);
    failing = true;
    calls = 0;
    await untilClockPasses(Date.now() + 50);
    await burst(); // the first lookup calls the loader, which fails; the nine others come within the backoff
    const backoffOver = Date.now() + 500; // the backoff started before the first lookup answered
    expect(calls).toBe(1);
    await untilClockPasses(backoffOver);
    await burst(); // the backoff has run out: the first lookup tries again, once; a new backoff covers the others
    expect(calls).toBe(2);
  });

  it('waits for the loader on a stale L2 entry when stale-while-revalidate is off (no L1), without hanging', async () => {
    const cache = await createCache({ l1: false });
    const options = { ttl: 100, grace: '1m', staleWhileRevalidate: false } as const;
    await cache.getOrSet('no-swr', async () => 'old', options);
    await untilClockPasses(Date.now() + 100);
    const events: string[] = [];
    const held = heldLoader(() => 'new');
    const lookup = cache.getOrSetWithStatus('no-swr', held.loader, options).then((answer) => (events.push('answered'), answer));
    await held.started;
    events.push('released');
    held.release();
    expect(await lookup).toEqual({ value: 'new', status: 'MISS' });
    expect(events).toEqual(['released', 'answered']); // the answer waited for the loader, not served stale first
  });

  it('without a stale value, the loader error and the hard timeout reach the caller', async () => {
    const cache = await createCache();
    await expect(cache.getOrSet('boom', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const held = heldLoader(() => 1);
    // The timeout error comes while the loader is still held: the caller did not wait for it.
    await expect(cache.getOrSet('slow', held.loader, { timeout: { hard: 100 } })).rejects.toMatchObject({
      code: 'CACHE_LOADER_TIMEOUT',
    });
    expect(held.calls).toBe(1);
    held.release();
  });

  it('soft timeout: with stale at hand, a slow loader is not waited for, and its value lands later', async () => {
    const cache = await createCache();
    const options = { ttl: 200, grace: '1m', staleWhileRevalidate: false, timeout: { soft: 50 } } as const;
    await cache.getOrSet('soft', async () => 'old', options);
    await untilClockPasses(Date.now() + 200);
    const held = heldLoader(() => 'new');
    // Stale, while the loader is still held.
    expect(await cache.getOrSetWithStatus('soft', held.loader, options)).toMatchObject({ value: 'old', status: 'STALE' });
    expect(held.calls).toBe(1);
    held.release();
    await waitFor(async () => (await cache.get('soft')) === 'new', { what: "the slow loader's value" });
  });

  it('never leaves an older loaded value in the cache after an invalidation (delete, set, tag)', async () => {
    const cache = await createCache();
    const invalidations = [
      (key: string) => cache.delete(key),
      (key: string) => cache.set(key, 'written'),
      () => cache.invalidateTags('race'),
    ];
    for (let round = 0; round < 30; round++) {
      const key = `race:${round}`;
      const invalidate = invalidations[round % invalidations.length];
      // The loader runs: the load holds its lock and has taken its start time; its answer waits for the test.
      const held = heldLoader(() => 'old');
      const load = cache.getOrSet(key, held.loader, { tags: ['race'] });
      await held.started;
      await invalidate(key);
      held.release();
      expect(await load).toBe('old'); // its caller still gets what it loaded...
      const cached = await cache.get(key);
      expect(cached === undefined || cached === 'written').toBe(true); // ...but the cache never keeps it
      const raw = await redis.get(`${prefix}{default:${key}}`);
      expect(raw === null || JSON.parse(raw).v === 'written').toBe(true);
    }
  });

  it('does not let a load land in L1 after an invalidation while Redis is down', async () => {
    const cache = await createCache({ redis: { url: 'redis://127.0.0.1:1' }, connectTimeout: 100 });
    const held = heldLoader(() => 'old');
    const load = cache.getOrSet('offline', held.loader);
    await held.started;
    await cache.delete('offline');
    held.release();
    expect(await load).toBe('old');
    expect(await cache.get('offline')).toBeUndefined();
  });

  it('counts loads, misses, hits and stale serves in its metrics', async () => {
    const cache = await createCache();
    const ns = cache.namespace('metered');
    await ns.getOrSet('a', () => 1);
    await ns.getOrSet('a', () => 1);
    const text = await runtimeOf(cache).metrics.registry.metrics();
    expect(text).toMatch(/cache_loads_total\{namespace="metered",outcome="success"\} 1/);
    expect(text).toMatch(/cache_misses_total\{namespace="metered"\} 1/);
    expect(text).toMatch(/cache_hits_total\{namespace="metered",layer="l1"\} 1/);
    expect(text).toMatch(/cache_l1_entries \d+/);
  });
});
