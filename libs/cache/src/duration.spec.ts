import { CacheError } from './cache.errors.js';
import { toMilliseconds } from './duration.js';

describe('toMilliseconds', () => {
  it.each([
    [1500, 1500],
    ['1500', 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
  ])('reads %p as %p ms', (input, expected) => {
    expect(toMilliseconds(input, 'ttl')).toBe(expected);
  });

  it.each([['soon'], [-1], ['-5s'], [Number.NaN], [null], [{}]])('refuses %p with an error naming the option', (input) => {
    expect(() => toMilliseconds(input, 'USERS_CACHE_TTL')).toThrow(CacheError);
    expect(() => toMilliseconds(input, 'USERS_CACHE_TTL')).toThrow(/USERS_CACHE_TTL/);
  });
});
