import { CacheOptionError } from './cache.errors.js';
import { type Duration, toMilliseconds } from './duration.js';
import type { EntryMeta } from './entry/envelope.js';
import { isNegativeValue, Uncached } from './entry/http-response.js';

export interface CacheEntryOptions<T = any> {
  /** How long the value is fresh. Default: the namespace's `ttl`, else the module's `defaultTtl`. */
  ttl?: Duration;
  /**
   * How long after `ttl` a stale value may still be served: at once while one background refresh
   * runs (stale-while-revalidate), or when the loader fails or is slow (fail-safe). Default 0.
   */
  grace?: Duration;
  /** Reads extend the TTL by `ttl` again, but never past `max` after the entry was written. */
  sliding?: { max: Duration };
  /** Shortens each TTL by up to this fraction (0..1), at random, so keys written together do not expire together. */
  jitter?: number;
  /** TTL of a cached `null`/`undefined` ("not found"). Default: the module's `negativeTtl`. */
  negativeTtl?: Duration;
  /** Tags for `invalidateTags`, fixed or computed from the value. */
  tags?: readonly string[] | ((value: T) => readonly string[]);
  /**
   * Probabilistic early refresh (XFetch, Vattani et al., VLDB 2015): a hit refreshes in the
   * background when `now - loadTime * beta * ln(random()) >= freshUntil`. `true` means beta 1.
   */
  xfetch?: boolean | { beta?: number };
  /**
   * The Redis lock across processes on a miss: one process loads, the others wait up to `wait`
   * for its value, then serve stale or load themselves. `false`: the others load at once
   * (only the lock holder's value is stored).
   */
  lock?: false | { ttl?: Duration; wait?: Duration };
  /** `soft`: with a stale value at hand, stop waiting for the loader and serve it. `hard`: bound every wait. */
  timeout?: { soft?: Duration; hard?: Duration };
  /** After a failed or timed-out load served stale, try the loader again no sooner than this. Default `'5s'`. */
  failSafeBackoff?: Duration;
  /** Serve stale within grace at once and refresh in the background (default), or wait for the loader first. */
  staleWhileRevalidate?: boolean;
  /** Coalesce concurrent misses of one key in this process (default `true`). */
  singleFlight?: boolean;
  /**
   * The version the value holds (e.g. the row's version column), stored with it: a CDC eviction
   * of that same version keeps the entry, and a write-through of an older one never replaces it.
   */
  version?: (value: T) => number;
}

/** The options a namespace may set for every call in it. */
export type NamespaceDefaults = Omit<CacheEntryOptions, 'tags' | 'sliding' | 'version'>;

/** The names of `NamespaceDefaults`, to refuse unknown ones (a typo) at start-up. */
export const NAMESPACE_OPTION_NAMES: readonly string[] = [
  'ttl',
  'grace',
  'jitter',
  'negativeTtl',
  'xfetch',
  'lock',
  'timeout',
  'failSafeBackoff',
  'staleWhileRevalidate',
  'singleFlight',
] satisfies ReadonlyArray<keyof NamespaceDefaults>;

/** The names of `CacheEntryOptions`. */
export const ENTRY_OPTION_NAMES: readonly string[] = [...NAMESPACE_OPTION_NAMES, 'tags', 'sliding', 'version'];

/** Throws naming the first option of `options` that is not in `known`. */
export function assertKnownOptions(options: object, known: readonly string[], owner: string): void {
  const unknown = Object.keys(options).find((name) => !known.includes(name));
  if (unknown !== undefined) {
    throw new CacheOptionError(`${owner}: unknown option "${unknown}"; known options are ${known.join(', ')}`);
  }
}

export interface CachePolicy {
  ttlMs?: number;
  graceMs: number;
  slidingMaxMs?: number;
  jitter: number;
  negativeTtlMs?: number;
  tags?: CacheEntryOptions['tags'];
  version?: CacheEntryOptions['version'];
  xfetchBeta: number;
  lock: false | { ttlMs: number; waitMs: number };
  softTimeoutMs?: number;
  hardTimeoutMs?: number;
  failSafeBackoffMs: number;
  staleWhileRevalidate: boolean;
  singleFlight: boolean;
}

export const DEFAULT_LOCK_TTL_MS = 10_000;
export const DEFAULT_LOCK_WAIT_MS = 5_000;
export const DEFAULT_FAIL_SAFE_BACKOFF_MS = 5_000;

const optionalMs = (value: Duration | undefined, name: string) => (value === undefined ? undefined : toMilliseconds(value, name));

/** Per-call options over namespace defaults, durations parsed once; throws on a bad option. */
export function resolvePolicy(options: CacheEntryOptions, defaults: NamespaceDefaults = {}): CachePolicy {
  const o = { ...defaults, ...options };
  const jitter = o.jitter ?? 0;
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new CacheOptionError(`jitter must be a fraction from 0 to 1; got ${o.jitter}`);
  }
  const beta = o.xfetch === true ? 1 : o.xfetch ? (o.xfetch.beta ?? 1) : 0;
  if (!(beta >= 0 && Number.isFinite(beta))) {
    throw new CacheOptionError(`xfetch.beta must be a number >= 0; got ${beta}`);
  }
  const policy: CachePolicy = {
    ttlMs: optionalMs(o.ttl, 'ttl'),
    graceMs: optionalMs(o.grace, 'grace') ?? 0,
    slidingMaxMs: o.sliding ? toMilliseconds(o.sliding.max, 'sliding.max') : undefined,
    jitter,
    negativeTtlMs: optionalMs(o.negativeTtl, 'negativeTtl'),
    tags: o.tags,
    version: o.version,
    xfetchBeta: beta,
    lock:
      o.lock === false
        ? false
        : {
            ttlMs: optionalMs(o.lock?.ttl, 'lock.ttl') ?? DEFAULT_LOCK_TTL_MS,
            waitMs: optionalMs(o.lock?.wait, 'lock.wait') ?? DEFAULT_LOCK_WAIT_MS,
          },
    softTimeoutMs: optionalMs(o.timeout?.soft, 'timeout.soft'),
    hardTimeoutMs: optionalMs(o.timeout?.hard, 'timeout.hard'),
    failSafeBackoffMs: optionalMs(o.failSafeBackoff, 'failSafeBackoff') ?? DEFAULT_FAIL_SAFE_BACKOFF_MS,
    staleWhileRevalidate: o.staleWhileRevalidate ?? true,
    singleFlight: o.singleFlight ?? true,
  };
  if (policy.lock && policy.lock.ttlMs < 100) {
    throw new CacheOptionError(`lock.ttl must be at least 100 ms; got ${policy.lock.ttlMs}`);
  }
  if (policy.slidingMaxMs !== undefined && policy.graceMs > 0) {
    throw new CacheOptionError('sliding and grace cannot be combined');
  }
  return policy;
}

/**
 * The envelope metadata for `value` (`undefined`: do not store). `fallbackTtlMs` and
 * `fallbackNegativeTtlMs` come from the module when neither the call nor the namespace set one.
 */
export function entryMetaFor<T>(
  value: T,
  policy: CachePolicy,
  now: number,
  loadMs: number,
  fallback: { ttlMs: number; negativeTtlMs: number },
  tagId: (tag: string) => string,
): EntryMeta | undefined {
  if (value instanceof Uncached) return undefined;
  const negative = isNegativeValue(value);
  let ttl = negative ? (policy.negativeTtlMs ?? fallback.negativeTtlMs) : (policy.ttlMs ?? fallback.ttlMs);
  ttl -= Math.floor(ttl * policy.jitter * Math.random());
  if (ttl <= 0) return undefined;
  const meta: EntryMeta = { c: now, f: now + ttl, h: now + ttl, d: Math.round(loadMs) };
  if (negative) return meta;
  if (policy.slidingMaxMs !== undefined) {
    if (policy.slidingMaxMs < ttl) {
      throw new CacheOptionError(`sliding.max (${policy.slidingMaxMs} ms) must be at least ttl (${ttl} ms)`);
    }
    meta.h = now + policy.slidingMaxMs;
    meta.s = ttl;
  } else {
    meta.h += policy.graceMs;
  }
  const tags = typeof policy.tags === 'function' ? policy.tags(value) : policy.tags;
  if (tags?.length) meta.t = tags.map(tagId);
  if (policy.version) meta.g = policy.version(value);
  return meta;
}
