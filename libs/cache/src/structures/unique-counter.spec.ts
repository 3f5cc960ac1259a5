import { CacheInputError } from '../cache.errors.js';
import { UniqueCounter } from './unique-counter.js';
import { keyPrefix as prefix, redis } from '../../test-support/cache-factory.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const todayStart = Math.floor(Date.now() / DAY_MS) * DAY_MS;
/** A moment `daysAgo` days before today (UTC), `ms` into that day: recent enough to be kept. */
const dayAt = (daysAgo: number, ms = 0) => new Date(todayStart - daysAgo * DAY_MS + ms);
const isoDay = (date: Date) => date.toISOString().slice(0, 10);

describe('UniqueCounter against Redis', () => {
  let counters = 0;
  const counter = (retentionMs = 7 * DAY_MS) => new UniqueCounter(redis, `${prefix}c${++counters}:`, { retentionMs });

  it('counts distinct members of a day and ignores repeats', async () => {
    const visits = counter();
    const day = dayAt(2, 8 * HOUR_MS);
    expect(await visits.add('ann', day)).toBe(true);
    expect(await visits.add('ann', day)).toBe(false);
    await visits.add('bob', dayAt(2, DAY_MS - 1));
    await visits.add('cid', dayAt(2));
    expect(await visits.count(day)).toBe(3);
    expect(await visits.count(dayAt(1))).toBe(0);
    expect(await visits.count(dayAt(3, DAY_MS - 1))).toBe(0);
    expect(await redis.exists(`${prefix}c${counters}:${isoDay(day)}`)).toBe(1);
  });

  it('estimates 1000 distinct members within 2 %', async () => {
    const visits = counter();
    const day = new Date();
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => visits.add(`visitor-${i + j}`, day)));
    }
    await Promise.all(Array.from({ length: 200 }, (_, j) => visits.add(`visitor-${j}`, day)));
    const estimate = await visits.count(day);
    expect(Math.abs(estimate - 1000)).toBeLessThanOrEqual(20);
  });

  it('counts a range as the union of its days, not their sum', async () => {
    const visits = counter();
    await visits.add('ann', dayAt(4, 10 * HOUR_MS));
    await visits.add('bob', dayAt(4, 10 * HOUR_MS));
    await visits.add('ann', dayAt(3, 10 * HOUR_MS));
    await visits.add('cid', dayAt(2, 10 * HOUR_MS));
    await visits.add('dan', dayAt(1, 10 * HOUR_MS));
    // Times inside the first and last day: the range covers whole UTC days.
    expect(await visits.countRange(dayAt(4, 23 * HOUR_MS), dayAt(2, HOUR_MS))).toBe(3);
    expect(await visits.countRange(dayAt(3), dayAt(3))).toBe(1);
    expect(await visits.countRange(dayAt(4), dayAt(0))).toBe(4);
  });

  it('refuses a reversed range and one longer than 366 days', async () => {
    const visits = counter();
    await expect(visits.countRange(new Date('2026-03-02T00:00:00Z'), new Date('2026-03-01T00:00:00Z'))).rejects.toThrow(CacheInputError);
    await expect(visits.countRange(new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).resolves.toBe(0); // 366 days
    await expect(visits.countRange(new Date('2025-01-01T00:00:00Z'), new Date('2026-01-02T00:00:00Z'))).rejects.toThrow(/366 days/);
    await expect(visits.count(new Date('nope'))).rejects.toThrow(CacheInputError);
  });

  it('keeps a day for the retention after the day ends', async () => {
    const retentionMs = 2 * DAY_MS;
    const visits = counter(retentionMs);
    await visits.add('ann', dayAt(0));
    await visits.add('bob', dayAt(1));
    const now = Date.now();
    const endOfToday = todayStart + DAY_MS;
    expect(Math.abs((await redis.pttl(visits.keyFor(dayAt(0)))) - (endOfToday + retentionMs - now))).toBeLessThan(2_000);
    // A later add to yesterday does not stretch yesterday's expiry.
    expect(Math.abs((await redis.pttl(visits.keyFor(dayAt(1)))) - (endOfToday - DAY_MS + retentionMs - now))).toBeLessThan(2_000);
  });

  it('does not keep a day that is already past retention', async () => {
    const visits = counter(DAY_MS);
    const old = new Date(Date.now() - 10 * DAY_MS);
    await visits.add('ann', old);
    expect(await visits.count(old)).toBe(0);
    expect(await redis.exists(visits.keyFor(old))).toBe(0);
  });

  it('merges a range into a roll-up key', async () => {
    const visits = counter();
    await visits.add('ann', dayAt(2, HOUR_MS));
    await visits.add('bob', dayAt(1, HOUR_MS));
    await visits.add('ann', dayAt(1, HOUR_MS));
    const merged = await visits.merge(dayAt(2), dayAt(1));
    expect(merged).toEqual({ key: `${visits.keyPrefix}${isoDay(dayAt(2))}..${isoDay(dayAt(1))}`, unique: 2 });
    expect(await redis.pfcount(merged.key)).toBe(2);
    expect(await redis.pttl(merged.key)).toBeGreaterThan(0);
    const named = await visits.merge(dayAt(2), dayAt(2), 'week-14');
    expect(named).toEqual({ key: `${visits.keyPrefix}week-14`, unique: 1 });
    await expect(visits.merge(dayAt(2), dayAt(1), isoDay(dayAt(0)))).rejects.toThrow(CacheInputError);
  });

  it('refuses a missing retention', () => {
    expect(() => new UniqueCounter(redis, prefix, { retentionMs: 0 })).toThrow(CacheInputError);
    expect(() => new UniqueCounter(redis, prefix, {} as { retentionMs: number })).toThrow(CacheInputError);
  });
});
