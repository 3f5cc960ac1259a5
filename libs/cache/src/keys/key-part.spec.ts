import { escapeGlob, glob, keyPart } from './key-part.js';

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

  it('compiles to a RegExp with Redis glob semantics', () => {
    const re = glob`user:${'a*?['}:*`.toRegExp('users:');
    expect(re.test('users:user:a*?[:1')).toBe(true);
    expect(re.test('users:user:abc[:1')).toBe(false);
    expect(re.test('users:user:a*?[')).toBe(false);
    const set = glob`v[12]?`.toRegExp();
    expect(['v1x', 'v2y', 'v3z'].map((k) => set.test(k))).toEqual([true, true, false]);
  });
});
