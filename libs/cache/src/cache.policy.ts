import { z } from 'zod';
import { CacheOptionError } from './cache.errors.js';
import type { Duration } from './duration.js';
import type { EntryMeta } from './entry/envelope.js';
import { isNegativeValue, Uncached } from './entry/http-response.js';
import { durationSchema, functionSchema, parseOptions, stringsOrFunctionSchema } from './option-schemas.js';

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

const aFunction = functionSchema();
const optionalDuration = durationSchema.optional();

/** What a namespace may set (and a call too), durations parsed to milliseconds. */
const namespaceFields = {
  ttl: optionalDuration,
  grace: optionalDuration,
  jitter: z.number().min(0, 'must be a fraction from 0 to 1').max(1, 'must be a fraction from 0 to 1').optional(),
  negativeTtl: optionalDuration,
  xfetch: z.union([z.boolean(), z.strictObject({ beta: z.number().min(0, 'must be a number >= 0').optional() })]).optional(),
  lock: z
    .union([
      z.literal(false),
      z.strictObject({ ttl: durationSchema.pipe(z.number().min(100, 'must be at least 100 ms')).optional(), wait: optionalDuration }),
    ])
    .optional(),
  timeout: z.strictObject({ soft: optionalDuration, hard: optionalDuration }).optional(),
  failSafeBackoff: optionalDuration,
  staleWhileRevalidate: z.boolean().optional(),
  singleFlight: z.boolean().optional(),
};

/** A namespace's defaults (module option `namespaces`): an unknown name is a typo, refused. */
export const namespaceDefaultsSchema = z.strictObject(namespaceFields);

/** The per-call options as they are read from any options object (a decorator's holds more: not read here). */
export const entryOptionFields = {
  ...namespaceFields,
  tags: stringsOrFunctionSchema.optional(),
  sliding: z.strictObject({ max: durationSchema }).optional(),
  version: aFunction.optional(),
};
const entryOptionsSchema = z.object(entryOptionFields);

export type ParsedNamespaceDefaults = z.output<typeof namespaceDefaultsSchema>;

export const DEFAULT_LOCK_TTL_MS = 10_000;
export const DEFAULT_LOCK_WAIT_MS = 5_000;
export const DEFAULT_FAIL_SAFE_BACKOFF_MS = 5_000;

/** The module's TTLs, for calls and namespaces that set none. */
export interface ModuleTtls {
  defaultTtl: number;
  negativeTtl: number;
}

/**
 * The options of one call over its namespace's defaults and the module's TTLs, validated once:
 * it answers what the read and write paths ask (TTLs, the lock, the loader's time limits, the
 * entry's metadata) instead of each computing it from raw options.
 */
export class CachePolicy {
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly graceMs: number;
  /** sliding TTL: reads push the expiry out again, never past this long after the write */
  readonly slidingMaxMs?: number;
  readonly jitter: number;
  readonly xfetchBeta: number;
  /** `false`: concurrent misses in other processes load at once (only the lock holder's value is stored) */
  readonly lock: false | { readonly ttlMs: number; readonly waitMs: number };
  readonly failSafeBackoffMs: number;
  readonly staleWhileRevalidate: boolean;
  readonly singleFlight: boolean;
  private readonly softTimeoutMs?: number;
  private readonly hardTimeoutMs?: number;
  private readonly tags?: CacheEntryOptions['tags'];
  private readonly version?: CacheEntryOptions['version'];

  /** Throws a `CacheOptionError` naming the option when `options` cannot be used. */
  constructor(options: CacheEntryOptions, defaults: ParsedNamespaceDefaults, module: ModuleTtls) {
    const o = { ...defaults, ...parseOptions(entryOptionsSchema, options, 'cache') };
    this.ttlMs = o.ttl ?? module.defaultTtl;
    this.negativeTtlMs = o.negativeTtl ?? module.negativeTtl;
    this.graceMs = o.grace ?? 0;
    this.slidingMaxMs = o.sliding?.max;
    this.jitter = o.jitter ?? 0;
    this.xfetchBeta = o.xfetch === true ? 1 : o.xfetch ? (o.xfetch.beta ?? 1) : 0;
    this.lock = o.lock === false ? false : { ttlMs: o.lock?.ttl ?? DEFAULT_LOCK_TTL_MS, waitMs: o.lock?.wait ?? DEFAULT_LOCK_WAIT_MS };
    this.softTimeoutMs = o.timeout?.soft;
    this.hardTimeoutMs = o.timeout?.hard;
    this.failSafeBackoffMs = o.failSafeBackoff ?? DEFAULT_FAIL_SAFE_BACKOFF_MS;
    this.staleWhileRevalidate = o.staleWhileRevalidate ?? true;
    this.singleFlight = o.singleFlight ?? true;
    this.tags = o.tags as CacheEntryOptions['tags'];
    this.version = o.version as CacheEntryOptions['version'];
    if (this.slidingMaxMs !== undefined && this.graceMs > 0) throw new CacheOptionError('sliding and grace cannot be combined');
    if (this.slidingMaxMs !== undefined && this.slidingMaxMs < this.ttlMs) {
      throw new CacheOptionError(`sliding.max (${this.slidingMaxMs} ms) must be at least ttl (${this.ttlMs} ms)`);
    }
  }

  /** How long a load's lock lives (extended while the loader runs): a load takes it even when nobody waits. */
  get lockTtlMs(): number {
    return this.lock ? this.lock.ttlMs : DEFAULT_LOCK_TTL_MS;
  }

  /** The loader's time limits: the soft one only when a stale value can be served instead. */
  loaderTimeouts(hasStale: boolean): { softMs?: number; hardMs?: number } {
    return { softMs: hasStale ? this.softTimeoutMs : undefined, hardMs: this.hardTimeoutMs };
  }

  /** The ids of the tags a load will carry, when they do not depend on its value (their stamps are armed with the lock). */
  tagIdsKnownBefore(tagId: (tag: string) => string): readonly string[] {
    return Array.isArray(this.tags) ? this.tags.map(tagId) : [];
  }

  /** The envelope metadata of `value` (`undefined`: not stored): TTL with jitter, grace or sliding window, tags, version. */
  metaFor<T>(value: T, now: number, loadMs: number, tagId: (tag: string) => string): EntryMeta | undefined {
    if (value instanceof Uncached) return undefined;
    const negative = isNegativeValue(value);
    let ttl = negative ? this.negativeTtlMs : this.ttlMs;
    ttl -= Math.floor(ttl * this.jitter * Math.random());
    if (ttl <= 0) return undefined;
    const meta: EntryMeta = { c: now, f: now + ttl, h: now + ttl, d: Math.round(loadMs) };
    if (negative) return meta;
    if (this.slidingMaxMs !== undefined) {
      meta.h = now + this.slidingMaxMs;
      meta.s = ttl;
    } else {
      meta.h += this.graceMs;
    }
    const tags = typeof this.tags === 'function' ? (this.tags as (value: T) => readonly string[])(value) : this.tags;
    if (tags?.length) meta.t = tags.map(tagId);
    if (this.version) meta.g = (this.version as (value: T) => number)(value);
    return meta;
  }
}
