import { CacheOptionError } from './cache.errors.js';
import { CachePolicy, namespaceDefaultsSchema } from './cache.policy.js';
import { Uncached } from './entry/http-response.js';
import { parseOptions } from './option-schemas.js';

const module = { defaultTtl: 60_000, negativeTtl: 5_000 };
const tagId = (tag: string) => `ns:${tag}`;
const NOW = 1_000_000;

describe('CachePolicy', () => {
  it("takes the call's options over the namespace's defaults over the module's TTLs", () => {
    expect(new CachePolicy({}, {}, module).ttlMs).toBe(60_000);
    const namespace = parseOptions(namespaceDefaultsSchema, { ttl: '5m', grace: '1m', negativeTtl: 1_000 }, 'namespace');
    const fromNamespace = new CachePolicy({}, namespace, module);
    expect([fromNamespace.ttlMs, fromNamespace.graceMs, fromNamespace.negativeTtlMs]).toEqual([300_000, 60_000, 1_000]);
    const fromCall = new CachePolicy({ ttl: '30s', grace: 0 }, namespace, module);
    expect([fromCall.ttlMs, fromCall.graceMs, fromCall.negativeTtlMs]).toEqual([30_000, 0, 1_000]);
  });

  it('answers the lock TTL, also for a call that does not wait for the lock', () => {
    expect(new CachePolicy({ lock: { ttl: '2s', wait: '1s' } }, {}, module).lockTtlMs).toBe(2_000);
    expect(new CachePolicy({ lock: false }, {}, module).lockTtlMs).toBe(10_000);
    expect(new CachePolicy({}, {}, module).lock).toEqual({ ttlMs: 10_000, waitMs: 5_000 });
  });

  it('applies the soft timeout only when a stale value can be served instead', () => {
    const policy = new CachePolicy({ timeout: { soft: '50ms', hard: '2s' } }, {}, module);
    expect(policy.loaderTimeouts(true)).toEqual({ softMs: 50, hardMs: 2_000 });
    expect(policy.loaderTimeouts(false)).toEqual({ softMs: undefined, hardMs: 2_000 });
  });

  it('builds entry metadata: TTL, grace, sliding window, negative TTL, tags and version', () => {
    const graced = new CachePolicy({ ttl: 1_000, grace: 500, tags: (v: { team: string }) => [v.team], version: () => 7 }, {}, module);
    expect(graced.metaFor({ team: 'a' }, NOW, 12.4, tagId)).toEqual({ c: NOW, f: NOW + 1_000, h: NOW + 1_500, d: 12, t: ['ns:a'], g: 7 });
    const sliding = new CachePolicy({ ttl: 1_000, sliding: { max: '1m' } }, {}, module);
    expect(sliding.metaFor('v', NOW, 0, tagId)).toEqual({ c: NOW, f: NOW + 1_000, h: NOW + 60_000, d: 0, s: 1_000 });
    // A cached "not found" lives for the negative TTL, without grace or tags.
    expect(graced.metaFor(null, NOW, 0, tagId)).toEqual({ c: NOW, f: NOW + 5_000, h: NOW + 5_000, d: 0 });
    expect(graced.metaFor(new Uncached('x'), NOW, 0, tagId)).toBeUndefined();
    expect(new CachePolicy({ negativeTtl: 0 }, {}, module).metaFor(null, NOW, 0, tagId)).toBeUndefined();
    expect(new CachePolicy({ tags: ['x', 'y'] }, {}, module).tagIdsKnownBefore(tagId)).toEqual(['ns:x', 'ns:y']);
    expect(graced.tagIdsKnownBefore(tagId)).toEqual([]); // computed from the value: not known before the load
  });

  it('shortens each TTL by at most the jitter fraction', () => {
    const policy = new CachePolicy({ ttl: 1_000, jitter: 0.2 }, {}, module);
    for (let i = 0; i < 200; i++) {
      const ttl = policy.metaFor('v', NOW, 0, tagId)!.f - NOW;
      expect(ttl).toBeGreaterThan(800);
      expect(ttl).toBeLessThanOrEqual(1_000);
    }
  });

  it.each([
    [{ jitter: 2 }, /"jitter" is invalid: must be a fraction from 0 to 1 \(got 2\)/],
    [{ ttl: 'soon' }, /"ttl" is invalid: .*got "soon"/],
    [{ lock: { ttl: 50 } }, /"lock.ttl" is invalid: must be at least 100 ms/],
    [{ xfetch: { beta: -1 } }, /"xfetch.beta" is invalid/],
    [{ lock: { ttl: '1s', wiat: '1s' } }, /unknown option "lock.wiat"/],
    [{ ttl: 1_000, grace: 1_000, sliding: { max: '1m' } }, /sliding and grace cannot be combined/],
    [{ ttl: '1m', sliding: { max: '30s' } }, /sliding.max \(30000 ms\) must be at least ttl \(60000 ms\)/],
  ])('refuses %j, naming the option', (options, message) => {
    expect(() => new CachePolicy(options as never, {}, module)).toThrow(CacheOptionError);
    expect(() => new CachePolicy(options as never, {}, module)).toThrow(message);
  });

  it("refuses an unknown name in a namespace's defaults (a typo), and leaves a decorator's own options to the decorator", () => {
    expect(() => parseOptions(namespaceDefaultsSchema, { tll: '1m' }, 'namespace "users"')).toThrow(/unknown option "tll"/);
    expect(new CachePolicy({ ttl: '1m', key: 'k', namespace: 'users' } as never, {}, module).ttlMs).toBe(60_000);
  });
});
