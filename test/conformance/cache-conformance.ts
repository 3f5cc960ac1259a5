import { CacheModule, type CacheModuleOptions, CacheService, glob } from '@cachekit/cache';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { dropPrefix, uniquePrefix } from '../support/services.js';
import { eventually } from '../support/wait.js';

/** How a topology hands its Redis to the cache: `{ url }`, `{ sentinel }` or `{ cluster }`. */
export type RedisTarget = CacheModuleOptions['redis'];

/** A cache on `target` under a fresh key prefix, for a topology spec's own checks; `close` ends it. */
export async function cacheOn(target: RedisTarget): Promise<{ cache: CacheService; prefix: string; close: () => Promise<void> }> {
  const prefix = uniquePrefix('topology');
  const moduleRef = await Test.createTestingModule({
    imports: [CacheModule.forRoot({ redis: target, keyPrefix: prefix, l1: false })],
  }).compile();
  await moduleRef.init();
  return { cache: moduleRef.get(CacheService), prefix, close: () => moduleRef.close() };
}

/**
 * The behaviour of `CacheService` every Redis topology must keep, as one suite that each
 * topology's spec runs with its own Redis (bentocache runs one driver suite for every store the
 * same way). `target()` is read when the suite starts, after the spec's `beforeAll`.
 */
export function registerCacheConformance(topology: string, target: () => RedisTarget): void {
  describe(`CacheService conformance on ${topology}`, () => {
    const closers: Array<() => Promise<void>> = [];
    const prefix = uniquePrefix(`conformance-${topology}`);

    /** One instance of the cache (its own L1 and bus connection), on the shared Redis and prefix. */
    async function instance(options: Partial<CacheModuleOptions> = {}): Promise<CacheService> {
      const moduleRef = await Test.createTestingModule({
        imports: [CacheModule.forRoot({ redis: target(), keyPrefix: prefix, ...options })],
      }).compile();
      await moduleRef.init();
      closers.push(() => moduleRef.close());
      return moduleRef.get(CacheService);
    }

    afterAll(async () => {
      for (const close of closers.reverse()) await close();
      const redis = target();
      if ('url' in redis) {
        const client = new Redis(redis.url);
        await dropPrefix(client, prefix);
        await client.quit();
      } // the Sentinel and cluster topologies are thrown away whole
    });

    it('sets, gets, deletes, and keeps namespaces apart', async () => {
      const cache = await instance();
      await cache.set('a', { n: 1 }, { ttl: '1m' });
      await cache.namespace('other').set('a', { n: 2 }, { ttl: '1m' });
      expect(await cache.get('a')).toEqual({ n: 1 });
      expect(await cache.namespace('other').get('a')).toEqual({ n: 2 });
      expect(await cache.delete('a')).toBe(1);
      expect(await cache.get('a')).toBeUndefined();
    });

    it('invalidates by tag and by pattern, in both levels', async () => {
      const cache = (await instance()).namespace('tags');
      for (const id of [1, 2, 3]) await cache.set(`user:${id}`, id, { ttl: '1m', tags: id < 3 ? ['group'] : [] });
      expect(await cache.invalidateTags('group')).toBe(2);
      expect([await cache.get('user:1'), await cache.get('user:3')]).toEqual([undefined, 3]);
      await cache.set('page:1', 'p', { ttl: '1m' });
      expect(await cache.invalidatePattern(glob`page:*`)).toBe(1);
      expect(await cache.get('page:1')).toBeUndefined();
    });

    it('runs every call whose keys live on many hash slots: keys, versions, tags, patterns, hashes', async () => {
      const cache = (await instance({ l1: false })).namespace('spread');
      const ids = Array.from({ length: 20 }, (_, i) => `k${i}`);
      const fill = () => Promise.all(ids.map((id) => cache.set(id, id, { ttl: '1m', tags: ['many'] })));
      await fill();
      expect(await cache.invalidate({ keys: ids })).toBe(20);
      await fill();
      expect(await cache.invalidate({ versions: Object.fromEntries(ids.map((id) => [id, 1])) })).toBe(20);
      await fill();
      expect(await cache.invalidateTags('many')).toBe(20);
      await fill();
      expect(await cache.invalidatePattern(glob`k*`)).toBe(20);
      expect(await Promise.all(ids.map((id) => cache.get(id)))).toEqual(ids.map(() => undefined));
      const hashes = cache.hash({ ttl: '1m' });
      for (const id of ids) await hashes.set(id, { id });
      await cache.invalidate({ hashes: ids });
      expect(await Promise.all(ids.map((id) => hashes.get(id)))).toEqual(ids.map(() => undefined));
    });

    it('never lands a load that started before an invalidation of its tag', async () => {
      const cache = (await instance({ l1: false })).namespace('late');
      let release!: () => void;
      const latch = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const loading = new Promise<void>((resolve) => (started = resolve));
      const load = cache.getOrSet(
        'row',
        async () => {
          started();
          await latch;
          return 'read before the change';
        },
        { ttl: '1m', tags: ['rows'] },
      );
      await loading;
      await cache.invalidateTags('rows');
      release();
      expect(await load).toBe('read before the change'); // its caller gets it...
      expect(await cache.get('row')).toBeUndefined(); // ...the cache does not keep it
      expect(await cache.getOrSet('row', async () => 'read after', { ttl: '1m', tags: ['rows'] })).toBe('read after');
      expect(await cache.get('row')).toBe('read after');
    });

    it('loads a cold key once across two instances (single-flight and the Redis lock)', async () => {
      const [a, b] = [await instance(), await instance()];
      let loads = 0;
      const loader = async () => {
        loads++;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return 'v';
      };
      const answers = await Promise.all([
        ...Array.from({ length: 10 }, () => a.getOrSet('cold', loader, { ttl: '1m' })),
        ...Array.from({ length: 10 }, () => b.getOrSet('cold', loader, { ttl: '1m' })),
      ]);
      expect(answers.every((answer) => answer === 'v')).toBe(true);
      expect(loads).toBe(1);
    });

    it('never lets an older write-through replace a newer version', async () => {
      const cache = (await instance()).namespace('versions');
      const put = (version: number) => cache.writeThrough('row', async () => ({ version }), { version: (row) => row.version });
      await put(1);
      await put(3);
      await put(2);
      expect(await cache.get('row')).toEqual({ version: 3 });
    });

    it('keeps the L1 of another instance coherent over the bus', async () => {
      const [a, b] = [await instance(), await instance()];
      await a.set('shared', 'one', { ttl: '1m' });
      expect(await b.get('shared')).toBe('one'); // now in B's L1
      await a.set('shared', 'two', { ttl: '1m' });
      expect(await eventually(async () => (await b.get('shared')) === 'two', 3_000)).toBe(true);
    });

    it('serves the Redis structures: leaderboard, hash object, unique counter', async () => {
      const cache = await instance();
      const board = cache.leaderboard('game');
      await board.add('ann', 10);
      await board.add('bob', 20);
      expect((await board.top(2)).map((entry) => entry.member)).toEqual(['bob', 'ann']);
      const hashes = cache.hash({ ttl: '1m' });
      await hashes.set('u1', { name: 'Ann', age: 30 });
      expect(await hashes.getField('u1', 'name')).toBe('Ann');
      const visitors = cache.uniqueCounter('home', { retention: '1d' });
      await visitors.add('v1');
      await visitors.add('v2');
      await visitors.add('v1');
      expect(await visitors.count()).toBe(2);
      const yesterday = new Date(Date.now() - 86_400_000);
      await visitors.add('v3', yesterday);
      expect(await visitors.countRange(yesterday, new Date())).toBe(3); // PFCOUNT over two days' keys
      expect((await visitors.merge(yesterday, new Date())).unique).toBe(3);
    });
  });
}
