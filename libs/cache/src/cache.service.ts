import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { CacheError } from './cache.errors.js';
import { DEFAULT_NAMESPACE } from './cache.constants.js';
import { CacheRuntime } from './cache.runtime.js';
import { type Duration, toMilliseconds } from './duration.js';
import type { EntryMeta } from './entry/envelope.js';
import { escapeGlob, type KeyPattern } from './keys/key-part.js';
import type { CacheLayerName } from './layers/two-level.store.js';

export interface CacheEntryOptions<T = unknown> {
  /** How long the value is fresh. Default: the namespace's `ttl`, else the module's `defaultTtl`. */
  ttl?: Duration;
  /** Reads extend the TTL by `ttl` again, but never past `max` after the entry was written. */
  sliding?: { max: Duration };
  /** Shortens each TTL by up to this fraction (0..1), at random, so keys written together do not expire together. */
  jitter?: number;
  /** TTL of a cached `null`/`undefined` ("not found"). Default: the module's `negativeTtl`. */
  negativeTtl?: Duration;
  /** Tags for `invalidateTags`, fixed or computed from the value. */
  tags?: readonly string[] | ((value: T) => readonly string[]);
}

export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

export interface CacheLookup<T> {
  value: T;
  status: CacheStatus;
  /** where a hit came from */
  layer?: CacheLayerName;
}

const NAMESPACE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** The cache API for one namespace; keys and tags of different namespaces never meet. */
export class CacheNamespace {
  constructor(
    protected readonly runtime: CacheRuntime,
    readonly name: string,
  ) {
    if (!NAMESPACE_PATTERN.test(name)) {
      throw new CacheError('CACHE_INVALID_KEY', `namespace must match ${NAMESPACE_PATTERN}; got ${JSON.stringify(name)}`);
    }
  }

  /** A handle on another namespace of the same cache. */
  namespace(name: string): CacheNamespace {
    return new CacheNamespace(this.runtime, name);
  }

  /** The value, `null` for a cached "not found", `undefined` for a miss. */
  async get<T>(key: string): Promise<T | null | undefined> {
    const id = this.id(key);
    const found = this.runtime.store.readLocal(id) ?? (await this.runtime.store.readRemote(id));
    return found?.value as T | null | undefined;
  }

  async has(key: string): Promise<boolean> {
    return this.runtime.store.exists(this.id(key));
  }

  async set<T>(key: string, value: T, options: CacheEntryOptions<T> = {}): Promise<void> {
    const now = Date.now();
    const meta = this.metaFor(value, options, now, 0);
    if (meta) await this.runtime.store.write(this.id(key), value ?? null, meta, now);
    else await this.runtime.store.delete([this.id(key)]);
  }

  async delete(...keys: string[]): Promise<number> {
    return this.runtime.store.delete(keys.map((key) => this.id(key)));
  }

  /** Cache-aside: the cached value, or the loader's (stored before it is returned). */
  async getOrSet<T>(key: string, loader: () => Promise<T> | T, options?: CacheEntryOptions<T>): Promise<T> {
    return (await this.getOrSetWithStatus(key, loader, options)).value;
  }

  /**
   * `getOrSet` that also says where the value came from. Concurrent calls for one key in
   * this process share one loader call (single-flight) and its result or its error.
   */
  async getOrSetWithStatus<T>(
    key: string,
    loader: () => Promise<T> | T,
    options: CacheEntryOptions<T> = {},
  ): Promise<CacheLookup<T>> {
    const id = this.id(key);
    const { store, flights } = this.runtime;
    const local = store.readLocal(id);
    if (local) return { value: local.value as T, status: 'HIT', layer: 'l1' };
    return flights.run(id, async (): Promise<CacheLookup<T>> => {
      const remote = await store.readRemote(id);
      if (remote) return { value: remote.value as T, status: 'HIT', layer: 'l2' };
      const started = performance.now();
      const value = await loader();
      const now = Date.now();
      const meta = this.metaFor(value, options, now, performance.now() - started);
      if (meta) await store.write(id, value ?? null, meta, now);
      return { value, status: 'MISS' };
    });
  }

  /** Removes every entry of these tags (of this namespace), in both levels. */
  async invalidateTags(...tags: string[]): Promise<number> {
    return this.runtime.store.invalidateTags(tags.map((tag) => this.id(tag)));
  }

  /**
   * Removes the keys of this namespace that match `pattern` (SCAN + UNLINK, never KEYS).
   * Build the pattern with the `glob` tag so that only your own wildcards act as wildcards.
   */
  async invalidatePattern(pattern: KeyPattern): Promise<number> {
    const prefix = `${this.name}:`;
    return this.runtime.store.deleteMatching(escapeGlob(prefix) + pattern.glob, pattern.toRegExp(prefix));
  }

  protected id(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
      throw new CacheError('CACHE_INVALID_KEY', `a cache key must be a string of 1 to 1024 characters; got ${JSON.stringify(key)}`);
    }
    return `${this.name}:${key}`;
  }

  private metaFor<T>(value: T, options: CacheEntryOptions<T>, now: number, loadMs: number): EntryMeta | undefined {
    const { config } = this.runtime;
    const defaults = config.namespaces[this.name];
    const negative = value === null || value === undefined;
    let ttl = negative
      ? options.negativeTtl === undefined
        ? (defaults?.negativeTtlMs ?? config.negativeTtlMs)
        : toMilliseconds(options.negativeTtl, 'negativeTtl')
      : options.ttl === undefined
        ? (defaults?.ttlMs ?? config.defaultTtlMs)
        : toMilliseconds(options.ttl, 'ttl');
    if (options.jitter !== undefined) {
      if (!(options.jitter >= 0 && options.jitter <= 1)) {
        throw new CacheError('CACHE_INVALID_OPTION', `jitter must be a fraction from 0 to 1; got ${options.jitter}`);
      }
      ttl -= Math.floor(ttl * options.jitter * Math.random());
    }
    if (ttl <= 0) return undefined;
    const meta: EntryMeta = { c: now, f: now + ttl, h: now + ttl, d: Math.round(loadMs) };
    if (options.sliding && !negative) {
      const max = toMilliseconds(options.sliding.max, 'sliding.max');
      if (max < ttl) throw new CacheError('CACHE_INVALID_OPTION', `sliding.max (${max} ms) must be at least ttl (${ttl} ms)`);
      meta.h = now + max;
      meta.s = ttl;
    }
    const tags = typeof options.tags === 'function' ? options.tags(value) : options.tags;
    if (tags?.length) meta.t = tags.map((tag) => this.id(tag));
    return meta;
  }
}

/** The cache: the `default` namespace, and `namespace(name)` for the others. */
@Injectable()
export class CacheService extends CacheNamespace {
  constructor(@Inject(CacheRuntime) runtime: CacheRuntime) {
    super(runtime, DEFAULT_NAMESPACE);
  }
}
