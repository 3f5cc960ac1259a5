import { escapeGlob, glob, KeyPattern, keyPart } from './key-part.js';

describe('keys', () => {
  it('keyPart leaves no glob character and no separator', () => {
    const part = keyPart('a*b?c[d]e\\f:g');
    expect(part).not.toMatch(/[*?[\]\\:]/);
    expect(decodeURIComponent(part)).toBe('a*b?c[d]e\\f:g');
  });

  it('glob escapes interpolated values and keeps literal wildcards', () => {
    expect(glob`user:${'a*'}:*`.glob).toBe('user:a\\*:*');
    expect(escapeGlob('[x]?')).toBe('\\[x\\]\\?');
  });

  it('matches with Redis glob semantics', () => {
    const matches = glob`user:${'a*?['}:*`.matcher('users:');
    expect(matches('users:user:a*?[:1')).toBe(true);
    expect(matches('users:user:abc[:1')).toBe(false);
    expect(matches('users:user:a*?[')).toBe(false);
    const set = glob`v[12]?`.matcher();
    expect(['v1x', 'v2y', 'v3z'].map(set)).toEqual([true, true, false]);
    const negated = KeyPattern.fromTrusted('k[^a-c]').matcher();
    expect(['ka', 'kc', 'kd', 'k'].map(negated)).toEqual([false, false, true, false]);
    expect(KeyPattern.fromTrusted('a**b').matcher()('axxb')).toBe(true);
  });

  it('issue 11 item 10: a pattern with many wildcards matches in linear time (a backtracking RegExp would not finish)', () => {
    const matches = KeyPattern.fromTrusted('*a*a*a*a*a*a*a*a*a*a*b').matcher();
    const text = 'a'.repeat(5_000);
    expect(matches(text)).toBe(false);
    expect(matches(`${text}b`)).toBe(true);
  });
});
