import { CacheInputError } from '../cache.errors.js';
import { HashCache } from './hash-cache.js';
import { keyPrefix as prefix, redis } from '../../test-support/cache-factory.js';
import { heldLoader, waitFor } from '../../test-support/wait.js';

/** Redis's clock, in ms: tombstones and fill starts are stamped with it. */
const redisNow = async () => {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
};

describe('HashCache against Redis', () => {
  const users = new HashCache(redis, `${prefix}~hash:users:`, { ttlMs: 60_000 });
  const keyOf = (id: string | number) => `${prefix}~hash:users:{${id}}`;

  it('stores an object as one hash field per property and reads it back whole or by field', async () => {
    const createdAt = new Date('2026-01-02T03:04:05.000Z');
    await users.set(1, { name: 'Ann', age: 30, settings: { theme: 'dark' }, tags: ['a'], nothing: null, createdAt });
    expect(await redis.hgetall(keyOf(1))).toEqual({
      name: '"Ann"',
      age: '30',
      settings: '{"theme":"dark"}',
      tags: '["a"]',
      nothing: 'null',
      createdAt: `{"$date":${createdAt.getTime()}}`,
    });
    expect(await users.get(1)).toEqual({ name: 'Ann', age: 30, settings: { theme: 'dark' }, tags: ['a'], nothing: null, createdAt });
    expect(await users.getField(1, 'settings')).toEqual({ theme: 'dark' });
    expect(await users.getField(1, 'createdAt')).toEqual(createdAt);
    expect(await users.getField(1, 'nothing')).toBeNull();
    expect(await users.getField(1, 'missing')).toBeUndefined();
    const ttl = await redis.pttl(keyOf(1));
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('answers undefined for an object that is not cached', async () => {
    expect(await users.get('nobody')).toBeUndefined();
    expect(await users.getField('nobody', 'name')).toBeUndefined();
  });

  it('replaces the whole object on set: fields the new object lacks are gone', async () => {
    await users.set(2, { name: 'Bob', email: 'bob@example.com' });
    await users.set(2, { name: 'Robert', skipped: undefined });
    expect(await users.get(2)).toEqual({ name: 'Robert' });
    expect(await redis.hkeys(keyOf(2))).toEqual(['name']);
  });

  it('treats setting an object with no fields as a delete', async () => {
    await users.set(3, { name: 'Cid' });
    await users.set(3, {});
    expect(await redis.exists(keyOf(3))).toBe(0);
    expect(await users.get(3)).toBeUndefined();
  });

  it('updates one field without rewriting the others and keeps the TTL', async () => {
    const short = new HashCache(redis, `${prefix}~hash:short:`, { ttlMs: 5_000 });
    await short.set(4, { name: 'Dee', visits: 1 });
    await redis.pexpire(`${prefix}~hash:short:{4}`, 3_000); // as if 2 s had gone by: a write that set the TTL again would show
    const before = await redis.pttl(`${prefix}~hash:short:{4}`);
    expect(await short.setField(4, 'visits', 2)).toBe(true);
    const after = await redis.pttl(`${prefix}~hash:short:{4}`);
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(before);
    expect(await short.get(4)).toEqual({ name: 'Dee', visits: 2 });
  });

  it('does not create a partial object when setField finds none', async () => {
    expect(await users.setField(5, 'name', 'Eve')).toBe(false);
    expect(await redis.exists(keyOf(5))).toBe(0);
    expect(await users.get(5)).toBeUndefined();
  });

  it('issue 11 item 10: a fill that read the database before a setField on an absent object does not land the old field', async () => {
    // The fill has taken its start time and reads the database; the old settings it read are on their way.
    const read = heldLoader(() => ({ name: 'Race', settings: { theme: 'old' } }));
    const fill = users.fill('race', read.loader);
    await read.started;
    expect(await users.setField('race', 'settings', { theme: 'new' })).toBe(false);
    read.release();
    await fill;
    expect(await users.getField('race', 'settings')).toBeUndefined();
  });

  it('issue 11 item 9: a fill whose tombstone was evicted after a delete does not land', async () => {
    await users.set('evicted', { name: 'Old' });
    const read = heldLoader(() => ({ name: 'Old' }));
    const fill = users.fill('evicted', read.loader);
    await read.started;
    await users.delete('evicted');
    await redis.unlink(`${prefix}~hash:users:~gone:{evicted}`); // the tombstone, evicted
    read.release();
    await fill;
    expect(await users.get('evicted')).toBeUndefined();
  });

  it('review: a fill that read the database before a set (or a setField on a cached object) does not land the older object', async () => {
    for (const write of [() => users.set('raced', { name: 'New' }), () => users.setField('raced', 'name', 'New')]) {
      await users.set('raced', { name: 'Cached' });
      await users.delete('raced');
      await users.set('raced', { name: 'Cached' });
      const read = heldLoader(() => ({ name: 'Old' }));
      const fill = users.fill('raced', read.loader);
      await read.started;
      await write();
      read.release();
      await fill;
      expect(await users.getField('raced', 'name')).toBe('New');
    }
  });

  it('reads a corrupt field as undefined and keeps the readable ones', async () => {
    await users.set(6, { name: 'Fay', age: 40 });
    await redis.hset(keyOf(6), 'age', '{not json');
    expect(await users.getField(6, 'age')).toBeUndefined();
    expect(await users.get(6)).toEqual({ name: 'Fay' });
  });

  it('keeps fields named __proto__ or constructor as plain data', async () => {
    await redis.hset(keyOf(7), '__proto__', '{"polluted":true}', 'constructor', '{"prototype":{"polluted":true}}', 'name', '"Gus"');
    const object = (await users.get(7)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
    expect((object as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(object.name).toBe('Gus');
  });

  it('deletes an object', async () => {
    await users.set(8, { name: 'Hal' });
    expect(await users.delete(8)).toBe(true);
    expect(await users.delete(8)).toBe(false);
    expect(await users.get(8)).toBeUndefined();
  });

  it('refuses bad arguments', async () => {
    expect(() => new HashCache(redis, prefix, { ttlMs: 0 })).toThrow(CacheInputError);
    await expect(users.set(9, [] as unknown as Record<string, unknown>)).rejects.toThrow(CacheInputError);
    await expect(users.set(9, null as unknown as Record<string, unknown>)).rejects.toThrow(CacheInputError);
    await expect(users.get('')).rejects.toThrow(CacheInputError);
    await expect(users.get(NaN)).rejects.toThrow(CacheInputError);
  });

  it('fill stores what it loaded, unless the object was deleted while it was loading', async () => {
    expect(await users.fill(20, async () => ({ name: 'Loaded' }))).toEqual({ name: 'Loaded' });
    expect(await users.getField(20, 'name')).toBe('Loaded');
    expect(await users.fill(21, async () => null)).toBeNull();
    expect(await redis.exists(keyOf(21))).toBe(0);

    const raced = await users.fill(22, async () => {
      await users.delete(22); // a change lands while the database read is on its way
      return { name: 'Read before the change' };
    });
    expect(raced).toEqual({ name: 'Read before the change' }); // the caller still gets its answer
    expect(await redis.exists(keyOf(22))).toBe(0); // but it is not cached
    // A fill that starts in a later millisecond of Redis's clock than the delete's tombstone lands.
    const deletedAt = Number(await redis.get(`${prefix}~hash:users:~gone:{22}`));
    await waitFor(async () => (await redisNow()) > deletedAt, { what: "Redis's clock past the delete" });
    await users.fill(22, async () => ({ name: 'Read after' }));
    expect(await users.getField(22, 'name')).toBe('Read after');
  });
});
