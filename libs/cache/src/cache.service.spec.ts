import { CacheError } from './cache.errors.js';
import { CacheModule } from './cache.module.js';
import { CacheService } from './cache.service.js';
import { glob } from './keys/key-part.js';
import { NotQueued, type WriteBehindProducer } from './write-behind/write-behind.port.js';
import { createCache, createTestingModule, keyPrefix as prefix, redis, runtimeOf } from '../test-support/cache-factory.js';
import { REDIS_URL } from '../test-support/services.js';
import { heldLoader, untilClockPasses } from '../test-support/wait.js';

describe('CacheService against Redis', () => {
  it('l1.values: copies (default) hands every caller its own copy; frozen hands out one deep-frozen value per entry', async () => {
    const copies = (await createCache()).namespace('values-copies');
    await copies.set('u', { name: 'Ada', tags: ['a'], at: new Date(5) }, { ttl: '1m' });
    const [first, second] = [await copies.get<{ name: string; tags: string[] }>('u'), await copies.get<{ name: string }>('u')];
    expect(first).not.toBe(second);
    first!.name = 'changed by a caller';
    first!.tags.push('b');
    expect(await copies.get('u')).toEqual({ name: 'Ada', tags: ['a'], at: new Date(5) });

    const frozen = (await createCache({ l1: { values: 'frozen' } })).namespace('values-frozen');
    await frozen.set('u', { name: 'Ada', tags: ['a'], nested: { deep: { n: 1 } } }, { ttl: '1m' });
    const shared = await frozen.get<{ name: string; tags: string[]; nested: { deep: { n: number } } }>('u');
    expect(await frozen.get('u')).toBe(shared); // the same object: no copy per hit
    expect(Object.isFrozen(shared) && Object.isFrozen(shared!.tags) && Object.isFrozen(shared!.nested.deep)).toBe(true);
    expect(() => shared!.tags.push('b')).toThrow(TypeError);
    // An L2 hit (an instance whose L1 is empty) hands out the frozen value it keeps from then on.
    const other = (await createCache({ l1: { values: 'frozen' } })).namespace('values-frozen');
    const fromRedis = await other.getOrSetWithStatus('u', async () => ({ name: 'loaded' }));
    expect(fromRedis).toMatchObject({ status: 'HIT', layer: 'l2', value: { name: 'Ada' } });
    expect(Object.isFrozen(fromRedis.value)).toBe(true);
    expect(await other.get('u')).toBe(fromRedis.value);
  });

  it('write-behind: a value cached beside a job add that failed goes again if persisting it now fails too', async () => {
    const cache = await createCache({ l1: false });
    const runtime = runtimeOf(cache);
    const settled: number[] = [];
    // The queue takes the version (the value is pending), the cache write runs beside the job add, the add fails.
    const producer: WriteBehindProducer = {
      enqueue: async (_job, _value, alongside) => {
        await alongside?.(41);
        throw new NotQueued(41, new Error('job add failed'));
      },
      fallbackVersion: () => 1,
      observe: () => undefined,
      pending: async () => undefined,
      settle: async (_namespace, _key, version) => void settled.push(version),
      count: () => undefined,
    };
    runtime.attachWriteBehind(producer);
    const users = cache.namespace('write-behind-fallback');
    await users.set('u', { theme: 'old' }, { ttl: '1m' });
    const failing = { entity: 'user', id: 1, persistNow: async () => Promise.reject(new Error('database away')) };
    await expect(users.writeBehind('u', { theme: 'new' }, failing, { ttl: '1m' })).rejects.toThrow('database away');
    expect(await users.get('u')).toBeUndefined(); // neither the new value (never written) nor a stale old one
    expect(settled).toEqual([41]);
    // Persisting works: the accepted version is written, and cached.
    const working = { entity: 'user', id: 1, persistNow: async () => undefined };
    expect(await users.writeBehind('u', { theme: 'new' }, working, { ttl: '1m' })).toEqual({ version: 41, mode: 'written' });
    expect(await users.get('u')).toEqual({ theme: 'new' });
  });

  it('issue 11 item 9: an evicted version floor never lets an older write-through replace a newer row', async () => {
    const cache = await createCache({ l1: false });
    const users = cache.namespace('floors');
    const put = (key: string, row: { name: string; version: number }) =>
      users.writeThrough(key, async () => row, { version: (u) => u.version });
    // The entry holds v5, its floor is evicted (what allkeys-lfu does to a cold key): v4 is refused.
    await users.set('u:1', { name: 'new', version: 5 }, { version: (u: { version: number }) => u.version });
    await put('u:1', { name: 'new', version: 5 });
    await redis.unlink(`${prefix}~ver:{floors:u:1}`);
    await put('u:1', { name: 'old', version: 4 });
    expect(await users.get('u:1')).toEqual({ name: 'new', version: 5 });
    // Entry and floor evicted together: Redis knows nothing, so v4 is not written (the next read loads the row).
    await redis.unlink(`${prefix}{floors:u:1}`, `${prefix}~ver:{floors:u:1}`);
    await put('u:1', { name: 'old', version: 4 });
    expect(await users.get('u:1')).toBeUndefined();
    // ...and from then on the floor is known again: a newer write lands, an older one does not.
    await put('u:1', { name: 'newer', version: 6 });
    await put('u:1', { name: 'old', version: 4 });
    expect(await users.get('u:1')).toEqual({ name: 'newer', version: 6 });
  });

  it('issue 11 item 9: a load whose tag stamp was evicted after a tag invalidation does not land', async () => {
    // Two instances without a bus: only what Redis holds protects the load of one from the other's invalidation.
    const ns = (await createCache({ l1: false, bus: false })).namespace('stamps');
    const other = (await createCache({ l1: false, bus: false })).namespace('stamps');
    const slow = heldLoader(() => 'old');
    const load = ns.getOrSet('k', slow.loader, { tags: ['t'] });
    await slow.started;
    await other.invalidateTags('t');
    await redis.unlink(`${prefix}~tagts:{stamps:t}`); // evicted: it held the invalidation
    slow.release();
    expect(await load).toBe('old');
    expect(await ns.get('k')).toBeUndefined();
    // A tag seen for the first time still caches at once (its stamp is armed with the lock).
    expect(await ns.getOrSet('fresh', async () => 'v', { tags: ['new-tag'] })).toBe('v');
    expect(await ns.get('fresh')).toBe('v');
  });

  it('review: a write-through Redis knew nothing about still ends a running load, whose older value never lands', async () => {
    const reader = (await createCache({ l1: false, bus: false })).namespace('unknown');
    const writer = (await createCache({ l1: false, bus: false })).namespace('unknown');
    const slow = heldLoader(() => ({ version: 1 })); // read v1 from the database; the answer is on its way
    const load = reader.getOrSet('row', slow.loader);
    await slow.started;
    await writer.writeThrough('row', async () => ({ version: 2 }), { version: (row) => row.version }); // 'unknown': no entry, no floor
    slow.release();
    expect(await load).toEqual({ version: 1 });
    expect(await reader.get('row')).toBeUndefined();
  });

  it('review: a load with tags computed from its value does not land when their stamp was evicted after an invalidation', async () => {
    const ns = (await createCache({ l1: false, bus: false })).namespace('dynamic-tags');
    const other = (await createCache({ l1: false, bus: false })).namespace('dynamic-tags');
    await other.invalidateTags('t'); // the stamp exists, then goes (evicted) while a load runs
    const slow = heldLoader(() => 'old');
    const load = ns.getOrSet('k', slow.loader, { tags: () => ['t'] });
    await slow.started;
    await other.invalidateTags('t');
    await redis.unlink(`${prefix}~tagts:{dynamic-tags:t}`);
    slow.release();
    await load;
    expect(await ns.get('k')).toBeUndefined();
  });

  it('issue 10: a value over maxEntrySize is served but never stored, and the older copy goes', async () => {
    const cache = await createCache({ maxEntrySize: 1_000 });
    await cache.set('big', 'small', { ttl: '1m' });
    await cache.set('big', 'x'.repeat(2_000), { ttl: '1m' });
    expect(await cache.get('big')).toBeUndefined();
    expect(await redis.exists(`${prefix}{default:big}`)).toBe(0);
    let loads = 0;
    for (let i = 0; i < 2; i++) expect(await cache.getOrSet('huge', async () => (loads++, 'y'.repeat(2_000)))).toHaveLength(2_000);
    expect(loads).toBe(2);
    expect((await cache.metrics()).body).toMatch(/cache_entries_too_large_total\{namespace="default"\} 3/);
  });

  it('has() answers what get() would: not for an entry past its TTL but within grace', async () => {
    const cache = await createCache();
    await cache.set('graced', 'v', { ttl: 300, grace: '1m' });
    const expired = Date.now() + 300;
    expect([await cache.has('graced'), await cache.get('graced')]).toEqual([true, 'v']);
    await untilClockPasses(expired);
    expect([await cache.has('graced'), await cache.get('graced')]).toEqual([false, undefined]);
    await cache.set('none', null, { negativeTtl: '1m' });
    expect([await cache.has('none'), await cache.get('none')]).toEqual([true, null]);
  });

  it('sets, gets, has and deletes in both levels', async () => {
    const cache = await createCache();
    await cache.set('a', { n: 1 }, { ttl: '1m' });
    expect(await cache.get('a')).toEqual({ n: 1 });
    expect(await cache.has('a')).toBe(true);
    expect(JSON.parse((await redis.get(`${prefix}{default:a}`)) as string)).toMatchObject({ v: { n: 1 } });
    expect(await cache.delete('a')).toBe(1);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.has('a')).toBe(false);
    expect(await redis.exists(`${prefix}{default:a}`)).toBe(0);
  });

  it('hands every caller its own copy of an L1 value', async () => {
    const cache = await createCache();
    await cache.set('copy', { n: 1 });
    const first = (await cache.get<{ n: number }>('copy'))!;
    first.n = 99;
    expect(await cache.get('copy')).toEqual({ n: 1 });
  });

  it('keeps namespaces apart', async () => {
    const cache = await createCache();
    await cache.namespace('users').set('1', 'user one');
    await cache.namespace('orders').set('1', 'order one');
    expect(await cache.namespace('users').get('1')).toBe('user one');
    expect(await cache.namespace('orders').get('1')).toBe('order one');
    expect(await cache.get('1')).toBeUndefined();
    expect(() => cache.namespace('bad name*')).toThrow(CacheError);
  });

  it('remembers the ids of recent keys per namespace, a bounded number, and still refuses a bad key', async () => {
    const cache = await createCache();
    const users = cache.namespace('users');
    await users.set('same', 'user');
    await cache.set('same', 'default');
    // Each namespace answers from its own id for a key both have used.
    expect(await users.get('same')).toBe('user');
    expect(await cache.get('same')).toBe('default');
    expect(await redis.get(`${prefix}{users:same}`)).toContain('"v":"user"');
    const memo = cache as unknown as { id(key: string): string; ids: Map<string, string>; previousIds: Map<string, string> };
    for (let i = 0; i < 5_000; i++) {
      expect(memo.id(`k${i}`)).toBe(`default:k${i}`);
      // A key in use stays remembered while the others come and go.
      if (i % 100 === 0) memo.id('hot');
    }
    expect(memo.ids.size + memo.previousIds.size).toBeLessThanOrEqual(2048);
    expect(memo.ids.has('hot') || memo.previousIds.has('hot')).toBe(true);
    expect(memo.id('x'.repeat(1024))).toBe(`default:${'x'.repeat(1024)}`);
    expect(memo.ids.has('x'.repeat(1024))).toBe(false);
    await expect(cache.get('')).rejects.toMatchObject({ code: 'CACHE_INVALID_KEY' });
    await expect(cache.get(7 as unknown as string)).rejects.toMatchObject({ code: 'CACHE_INVALID_KEY' });
    await expect(cache.get('x'.repeat(1025))).rejects.toMatchObject({ code: 'CACHE_INVALID_KEY' });
  });

  it('expires entries after their TTL, given in ms or as a string', async () => {
    const cache = await createCache();
    await cache.set('short', 1, { ttl: 150 });
    const expired = Date.now() + 150;
    await cache.set('long', 2, { ttl: '2s' });
    const ttl = await redis.pttl(`${prefix}{default:long}`);
    expect(ttl).toBeGreaterThan(1500);
    expect(ttl).toBeLessThanOrEqual(2000);
    await untilClockPasses(expired);
    expect(await cache.get('short')).toBeUndefined();
    expect(await cache.get('long')).toBe(2);
  });

  it('spreads TTLs with jitter, never beyond the TTL asked for', async () => {
    const cache = await createCache();
    for (let i = 0; i < 20; i++) await cache.set(`j${i}`, i, { ttl: 10_000, jitter: 0.5 });
    const ttls = await Promise.all(Array.from({ length: 20 }, (_, i) => redis.pttl(`${prefix}{default:j${i}}`)));
    expect(Math.max(...ttls)).toBeLessThanOrEqual(10_000);
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(4_900);
    expect(new Set(ttls.map((t) => Math.round(t / 100))).size).toBeGreaterThan(3);
    await expect(cache.set('bad', 1, { jitter: 2 })).rejects.toThrow(/jitter/);
  });

  it('sliding TTL: reads extend it, but never past its cap', async () => {
    const cache = await createCache();
    const key = `${prefix}{default:slide}`;
    await cache.set('slide', 'v', { ttl: 400, sliding: { max: 1000 } });
    const cap = Date.now() + 1000; // the entry was written before this: its cap is no later
    // Read every 200 ms, past the 400 ms TTL: each read pushes expiry 400 ms ahead, never past the cap.
    for (let read = 1; read <= 4; read++) {
      await untilClockPasses(cap - 1000 + read * 200);
      expect(await cache.get('slide')).toBe('v');
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(0);
      expect(Date.now() + pttl).toBeLessThanOrEqual(cap + 50); // the expiry Redis holds, with the round trip's slack
    }
    // Once the cap is past, the entry is gone, however recently it was read.
    await untilClockPasses(cap);
    expect(await cache.get('slide')).toBeUndefined();
    expect(await redis.exists(key)).toBe(0);
  });

  it('sliding TTL lapses without reads', async () => {
    const cache = await createCache();
    await cache.set('idle', 'v', { ttl: 200, sliding: { max: '5s' } });
    await untilClockPasses(Date.now() + 200);
    expect(await cache.get('idle')).toBeUndefined();
  });

  it('caches null as "not found" with its own TTL', async () => {
    const cache = await createCache({ negativeTtl: 200 });
    let loads = 0;
    const loader = async () => {
      loads++;
      return null;
    };
    expect(await cache.getOrSet('missing', loader, { ttl: '1m' })).toBeNull();
    expect(await cache.getOrSetWithStatus('missing', loader)).toEqual({ value: null, status: 'HIT', layer: 'l1' });
    expect(loads).toBe(1);
    const pttl = await redis.pttl(`${prefix}{default:missing}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(200);
    await untilClockPasses(Date.now() + 200);
    await cache.getOrSet('missing', loader);
    expect(loads).toBe(2);
  });

  it('runs the loader once for 200 concurrent getOrSet calls on one key', async () => {
    const cache = await createCache();
    let answers = 0;
    const held = heldLoader(() => ({ loadedAt: ++answers }));
    const calls = Array.from({ length: 200 }, () => cache.getOrSetWithStatus('hot', held.loader));
    await held.started; // every call was made before the loader may answer
    held.release();
    const results = await Promise.all(calls);
    expect(held.calls).toBe(1);
    expect(results.every((r) => r.status === 'MISS' && r.value.loadedAt === 1)).toBe(true);
    expect(await cache.get('hot')).toEqual({ loadedAt: 1 });
  });

  it('shares a loader error with every concurrent caller and caches nothing', async () => {
    const cache = await createCache();
    const held = heldLoader(() => Promise.reject(new Error('database down')));
    const calls = Array.from({ length: 50 }, () => cache.getOrSet('failing', held.loader));
    await held.started;
    held.release();
    const settled = await Promise.allSettled(calls);
    expect(held.calls).toBe(1);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'database down')).toBe(true);
    expect(await cache.has('failing')).toBe(false);
  });

  it('serves an L2 hit after the entry left L1, and promotes it with the remaining TTL', async () => {
    const cache = await createCache({ l1: { maxItems: 2 } });
    const runtime = runtimeOf(cache);
    await cache.set('first', 'one', { ttl: '10s' });
    await cache.set('second', 'two', { ttl: '10s' });
    await cache.set('third', 'three', { ttl: '10s' });
    expect(runtime.store.localSize().entries).toBe(2);
    expect(runtime.store.readLocal('default:first')).toBeUndefined();
    let loads = 0;
    const lookup = await cache.getOrSetWithStatus('first', () => {
      loads++;
      return 'reloaded';
    });
    expect(lookup).toEqual({ value: 'one', status: 'HIT', layer: 'l2' });
    expect(loads).toBe(0);
    const promoted = runtime.store.readLocal('default:first');
    expect(promoted?.value).toBe('one');
    expect(promoted!.meta.h - Date.now()).toBeLessThanOrEqual(10_000);
    expect(promoted!.meta.h - Date.now()).toBeGreaterThan(8_000);
  });

  it("keeps a load's value out of L1 when the key is deleted while the answer to its L2 write is on its way", async () => {
    const cache = await createCache();
    const runtime = runtimeOf(cache);
    const l2 = runtime.store['l2'];
    const setIfLocked = l2.setIfLocked.bind(l2);
    l2.setIfLocked = async (...args: Parameters<typeof setIfLocked>) => {
      const landed = await setIfLocked(...args);
      await cache.delete('on-its-way'); // Redis took the value; the delete comes before its answer is handled
      return landed;
    };
    expect(await cache.getOrSet('on-its-way', () => 'loaded')).toBe('loaded');
    expect(runtime.store.readLocal('default:on-its-way')).toBeUndefined();
    expect(await cache.get('on-its-way')).toBeUndefined();
  });

  it('never lets an L2 read already on its way put a just-deleted or overwritten value back into L1', async () => {
    const cache = await createCache();
    const runtime = runtimeOf(cache);
    for (let round = 0; round < 20; round++) {
      const key = `race-l1:${round}`;
      await cache.set(key, 'old');
      runtime.store.clearLocal(); // only L2 holds it now
      const reading = cache.get(key); // its GET goes out first...
      if (round % 2 === 0)
        await cache.delete(key); // ...then the delete, or a newer write
      else await cache.set(key, 'new');
      await reading;
      const local = runtime.store.readLocal(`default:${key}`)?.value;
      expect(local).toBe(round % 2 === 0 ? undefined : 'new');
    }
  });

  it('bounds L1 by bytes', async () => {
    const cache = await createCache({ l1: { maxItems: 1000, maxBytes: 20_000 } });
    const runtime = runtimeOf(cache);
    for (let i = 0; i < 50; i++) await cache.set(`big${i}`, 'x'.repeat(1000));
    expect(runtime.store.localSize().bytes).toBeLessThanOrEqual(20_000);
    expect(runtime.store.localSize().entries).toBeLessThan(50);
    expect(await cache.get('big0')).toBe('x'.repeat(1000)); // still in L2
  });

  it('treats a corrupt or foreign Redis value as a miss and removes it', async () => {
    const cache = await createCache({ l1: false });
    await redis.set(`${prefix}{default:corrupt}`, '{"v": {not json');
    await redis.set(`${prefix}{default:foreign}`, 'hello from another app');
    expect(await cache.get('corrupt')).toBeUndefined();
    expect(await cache.getOrSet('foreign', () => 'loaded')).toBe('loaded');
    expect(await redis.exists(`${prefix}{default:corrupt}`)).toBe(0);
    expect(await cache.get('foreign')).toBe('loaded');
  });

  it('evicts exactly the key of a name with glob characters, by key and by pattern', async () => {
    const cache = await createCache();
    const users = cache.namespace('users');
    const names = ['a*', 'a?', 'a[bc]', 'ab', 'ac', 'a'];
    for (const name of names) await users.set(`name:${name}`, name);
    for (const name of names) await users.set(`name:${name}:profile`, name);

    expect(await users.delete('name:a*')).toBe(1);
    expect(await users.invalidatePattern(glob`name:${'a[bc]'}:*`)).toBe(1);
    expect(await users.invalidatePattern(glob`name:${'a?'}`)).toBe(1);
    const expected = (name: string, suffix: string) =>
      (suffix === '' && (name === 'a*' || name === 'a?')) || (suffix === ':profile' && name === 'a[bc]') ? undefined : name;
    for (const name of names) {
      for (const suffix of ['', ':profile']) expect(await users.get(`name:${name}${suffix}`)).toBe(expected(name, suffix));
    }
    // The caller's own wildcards still work: `[bc]` here is a character class.
    expect(await users.invalidatePattern(glob`name:${'a'}[bc]:*`)).toBe(2);
    expect(await users.get('name:ab:profile')).toBeUndefined();
    expect(await users.get('name:a:profile')).toBe('a');
  });

  it('invalidates every entry of a tag in both levels', async () => {
    const cache = await createCache();
    const users = cache.namespace('users');
    await users.set('list:1', [1], { tags: ['list'] });
    await users.set('list:2', [2], { tags: (value) => (value.length ? ['list'] : []) });
    await users.set('other', 'o', { tags: ['other'] });
    expect(await users.invalidateTags('list')).toBe(2);
    expect(await users.get('list:1')).toBeUndefined();
    expect(await users.get('list:2')).toBeUndefined();
    expect(await users.get('other')).toBe('o');
    expect(await redis.exists(`${prefix}~tagz:{users:list}`)).toBe(0);
  });

  it('refuses bad module options with an error naming the option and the value', async () => {
    await expect(createCache({ l1: { maxItems: -5 } })).rejects.toThrow(/"l1\.maxItems".*got -5/);
    await expect(createCache({ defaultTtl: 'soon' as never })).rejects.toThrow(/"defaultTtl".*got "soon"/);
    await expect(createCache({ redis: { url: 'http://x' } })).rejects.toThrow(/"redis/);
  });

  it('accepts its options from forRootAsync', async () => {
    const moduleRef = await createTestingModule({
      imports: [
        CacheModule.forRootAsync({
          useFactory: async () => ({ redis: { url: REDIS_URL }, keyPrefix: prefix, namespaces: { fast: { ttl: '300ms' } } }),
        }),
      ],
    });
    const fast = moduleRef.get(CacheService).namespace('fast');
    await fast.set('k', 'v');
    const pttl = await redis.pttl(`${prefix}{fast:k}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
  });

  it('keeps answering through the loader when Redis is unreachable, without hanging', async () => {
    const cache = await createCache({ redis: { url: 'redis://127.0.0.1:1' }, connectTimeout: 200 });
    const client = runtimeOf(cache).redis;
    // No command waits for a connection: each one fails at once and the cache goes on without L2
    // (a hang would leave these awaits unanswered, since nothing ever listens on port 1).
    expect(await cache.getOrSet('k', () => 'from loader')).toBe('from loader');
    expect(await cache.get('k')).toBe('from loader'); // L1 still serves
    expect(await cache.namespace('x').get('absent')).toBeUndefined();
    expect(client.status).not.toBe('ready');
  });
});
