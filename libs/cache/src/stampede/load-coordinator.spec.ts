import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropPrefix, REDIS_URL, uniquePrefix } from '../../../../test/support/services.js';
import { CacheModule } from '../cache.module.js';
import type { CacheModuleOptions } from '../cache.options.js';
import { CacheService } from '../cache.service.js';
import { CacheRuntime } from '../cache.runtime.js';

describe('grace, fail-safe, timeouts and leases (real Redis)', () => {
  const prefix = uniquePrefix('loads');
  const redis = new Redis(REDIS_URL);
  const closers: Array<() => Promise<void>> = [];

  async function makeCache(options: Partial<CacheModuleOptions> = {}) {
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: prefix, ...options })],
    }).compile();
    await moduleRef.init();
    closers.push(() => moduleRef.close());
    return { cache: moduleRef.get(CacheService), runtime: moduleRef.get(CacheRuntime) };
  }

  afterAll(async () => {
    for (const close of closers) await close();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('serves stale within grace at once and runs one background refresh', async () => {
    const { cache } = await makeCache();
    let version = 0;
    const loader = async () => {
      await sleep(100);
      return ++version;
    };
    const options = { ttl: 300, grace: '10s' } as const;
    expect(await cache.getOrSet('swr', loader, options)).toBe(1);
    await sleep(350);
    const started = Date.now();
    const lookups = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSetWithStatus('swr', loader, options)));
    expect(Date.now() - started).toBeLessThan(50);
    expect(lookups.every((l) => l.status === 'STALE' && l.value === 1)).toBe(true);
    await sleep(150);
    expect(version).toBe(2);
    expect(await cache.getOrSetWithStatus('swr', loader, options)).toEqual({ value: 2, status: 'HIT', layer: 'l1' });
  });

  it('fail-safe: a failing loader with a value in grace serves stale, retried at most once per backoff', async () => {
    const { cache } = await makeCache();
    let calls = 0;
    let failing = false;
    const loader = async () => {
      calls++;
      if (failing) throw new Error('database down');
      return 'good';
    };
    const options = { ttl: 50, grace: '1m', failSafeBackoff: 300 } as const;
    await cache.getOrSet('fs', loader, options);
    failing = true;
    calls = 0;
    await sleep(80);
    const started = Date.now();
    while (Date.now() - started < 1000) {
      const lookup = await cache.getOrSetWithStatus('fs', loader, options);
      expect(lookup).toMatchObject({ value: 'good', status: 'STALE' });
      await sleep(10);
    }
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(Math.ceil(1000 / 300) + 1);
  });

  it('waits for the loader on a stale L2 entry when stale-while-revalidate is off (no L1), without hanging', async () => {
    const { cache } = await makeCache({ l1: false });
    const options = { ttl: 100, grace: '1m', staleWhileRevalidate: false } as const;
    await cache.getOrSet('no-swr', async () => 'old', options);
    await sleep(150);
    const lookup = await Promise.race([
      cache.getOrSetWithStatus('no-swr', async () => 'new', options),
      sleep(2_000).then(() => 'hung' as const),
    ]);
    expect(lookup).toEqual({ value: 'new', status: 'MISS' });
  });

  it('without a stale value, the loader error and the hard timeout reach the caller', async () => {
    const { cache } = await makeCache();
    await expect(cache.getOrSet('boom', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const started = Date.now();
    await expect(cache.getOrSet('slow', () => sleep(2_000).then(() => 1), { timeout: { hard: 100 } })).rejects.toMatchObject({
      code: 'CACHE_LOADER_TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('soft timeout: with stale at hand, a slow loader is not waited for, and its value lands later', async () => {
    const { cache } = await makeCache();
    const options = { ttl: 200, grace: '1m', staleWhileRevalidate: false, timeout: { soft: 50 } } as const;
    await cache.getOrSet('soft', async () => 'old', options);
    await sleep(250);
    const started = Date.now();
    const lookup = await cache.getOrSetWithStatus('soft', () => sleep(300).then(() => 'new'), options);
    expect(lookup).toMatchObject({ value: 'old', status: 'STALE' });
    expect(Date.now() - started).toBeLessThan(200);
    await sleep(320);
    expect(await cache.get('soft')).toBe('new');
  });

  it('never leaves an older loaded value in the cache after an invalidation (delete, set, tag)', async () => {
    const { cache } = await makeCache();
    const invalidations = [
      (key: string) => cache.delete(key),
      (key: string) => cache.set(key, 'written'),
      () => cache.invalidateTags('race'),
    ];
    for (let round = 0; round < 30; round++) {
      const key = `race:${round}`;
      const invalidate = invalidations[round % invalidations.length];
      let loading!: () => void;
      const loaderCalled = new Promise<void>((resolve) => (loading = resolve));
      const load = cache.getOrSet(
        key,
        () => {
          loading(); // the loader runs: the load holds its lease and has taken its start time
          return sleep(30).then(() => 'old');
        },
        { tags: ['race'] },
      );
      await loaderCalled;
      await invalidate(key);
      expect(await load).toBe('old'); // its caller still gets what it loaded...
      const cached = await cache.get(key);
      expect(cached === undefined || cached === 'written').toBe(true); // ...but the cache never keeps it
      const raw = await redis.get(`${prefix}{default:${key}}`);
      expect(raw === null || JSON.parse(raw).v === 'written').toBe(true);
    }
  });

  it('does not let a load land in L1 after an invalidation while Redis is down', async () => {
    const { cache } = await makeCache({ redis: { url: 'redis://127.0.0.1:1' }, connectTimeout: 100 });
    const load = cache.getOrSet('offline', () => sleep(30).then(() => 'old'));
    await sleep(10);
    await cache.delete('offline');
    expect(await load).toBe('old');
    expect(await cache.get('offline')).toBeUndefined();
  });

  it('counts loads, misses, hits and stale serves in its metrics', async () => {
    const { cache, runtime } = await makeCache();
    const ns = cache.namespace('metered');
    await ns.getOrSet('a', () => 1);
    await ns.getOrSet('a', () => 1);
    const text = await runtime.metrics.registry.metrics();
    expect(text).toMatch(/cache_loads_total\{namespace="metered",outcome="success"\} 1/);
    expect(text).toMatch(/cache_misses_total\{namespace="metered"\} 1/);
    expect(text).toMatch(/cache_hits_total\{namespace="metered",layer="l1"\} 1/);
    expect(text).toMatch(/cache_l1_entries \d+/);
  });
});
