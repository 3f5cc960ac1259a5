import { CacheInputError } from '../cache.errors.js';
import { Leaderboard } from './leaderboard.js';
import { keyPrefix as prefix, redis } from '../../test-support/cache-factory.js';

describe('Leaderboard against Redis', () => {
  let boards = 0;
  const board = (options?: { ttlMs?: number }) => new Leaderboard(redis, `${prefix}board${++boards}`, options);

  it('ranks the highest score first and answers each write with the new standing', async () => {
    const lb = board();
    expect(await lb.add('ann', 10)).toEqual({ member: 'ann', score: 10, rank: 1 });
    expect(await lb.add('bob', 30)).toEqual({ member: 'bob', score: 30, rank: 1 });
    expect(await lb.add('cid', 20.5)).toEqual({ member: 'cid', score: 20.5, rank: 2 });
    expect(await lb.top(10)).toEqual([
      { member: 'bob', score: 30, rank: 1 },
      { member: 'cid', score: 20.5, rank: 2 },
      { member: 'ann', score: 10, rank: 3 },
    ]);
    expect(await lb.top(2)).toHaveLength(2);
    expect(await lb.size()).toBe(3);
  });

  it('replaces a score on add and accumulates on increment', async () => {
    const lb = board();
    await lb.add('ann', 10);
    await lb.add('bob', 5);
    expect(await lb.add('ann', 1)).toEqual({ member: 'ann', score: 1, rank: 2 });
    expect(await lb.increment('ann', 7)).toEqual({ member: 'ann', score: 8, rank: 1 });
    expect(await lb.increment('new', -2)).toEqual({ member: 'new', score: -2, rank: 3 });
    expect(await lb.size()).toBe(3);
  });

  it('orders equal scores by member, in reverse byte order, with distinct ranks', async () => {
    const lb = board();
    await lb.add('a', 1);
    await lb.add('c', 1);
    await lb.add('b', 1);
    expect((await lb.top(3)).map(({ member, rank }) => [member, rank])).toEqual([
      ['c', 1],
      ['b', 2],
      ['a', 3],
    ]);
    expect(await lb.rankOf('b')).toEqual({ member: 'b', score: 1, rank: 2 });
  });

  it('answers null for an unknown member and [] for an unknown board', async () => {
    const lb = board();
    expect(await lb.rankOf('nobody')).toBeNull();
    expect(await lb.top(5)).toEqual([]);
    expect(await lb.size()).toBe(0);
    await lb.add('ann', 1);
    expect(await lb.rankOf('nobody')).toBeNull();
  });

  it('removes members', async () => {
    const lb = board();
    await lb.add('ann', 1);
    await lb.add('bob', 2);
    expect(await lb.remove('bob')).toBe(true);
    expect(await lb.remove('bob')).toBe(false);
    expect(await lb.rankOf('bob')).toBeNull();
    expect(await lb.rankOf('ann')).toEqual({ member: 'ann', score: 1, rank: 1 });
  });

  it('keeps members with glob and separator characters as they are', async () => {
    const lb = board();
    await lb.add('a*b:[c]?', 3);
    expect(await lb.rankOf('a*b:[c]?')).toEqual({ member: 'a*b:[c]?', score: 3, rank: 1 });
    expect(await lb.rankOf('a')).toBeNull();
  });

  it('has no expiry without ttlMs, and refreshes it on every write with ttlMs', async () => {
    const plain = board();
    await plain.add('ann', 1);
    expect(await redis.pttl(plain.key)).toBe(-1);

    const expiring = board({ ttlMs: 60_000 });
    await expiring.add('ann', 1);
    expect(await redis.pttl(expiring.key)).toBeGreaterThan(59_000);
    await redis.pexpire(expiring.key, 1_000);
    await expiring.increment('ann', 1);
    expect(await redis.pttl(expiring.key)).toBeGreaterThan(59_000);
    await redis.pexpire(expiring.key, 1_000);
    await expiring.add('bob', 1);
    await expiring.remove('bob');
    expect(await redis.pttl(expiring.key)).toBeGreaterThan(59_000);
    // Reads do not keep an idle board alive.
    await redis.pexpire(expiring.key, 1_000);
    await expiring.top(1);
    await expiring.rankOf('ann');
    expect(await redis.pttl(expiring.key)).toBeLessThanOrEqual(1_000);
  });

  it('refuses scores that are not finite numbers, and writes nothing', async () => {
    const lb = board();
    for (const bad of [NaN, Infinity, -Infinity, '5' as unknown as number]) {
      await expect(lb.add('ann', bad)).rejects.toThrow(CacheInputError);
      await expect(lb.increment('ann', bad)).rejects.toThrow(CacheInputError);
    }
    await expect(lb.top(0)).rejects.toThrow(CacheInputError);
    await expect(lb.top(1.5)).rejects.toThrow(CacheInputError);
    expect(() => board({ ttlMs: 0 })).toThrow(CacheInputError);
    expect(await redis.exists(lb.key)).toBe(0);
  });

  it('keeps rank consistent under concurrent writes', async () => {
    const lb = board();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => lb.add(`m${i}`, i)));
    expect(results.map((r) => r.score)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const top = await lb.top(50);
    expect(top[0]).toEqual({ member: 'm49', score: 49, rank: 1 });
    expect(top[49]).toEqual({ member: 'm0', score: 0, rank: 50 });
  });
});
