import { Inject, Injectable } from '@nestjs/common';
import { CacheInputError, CacheNotConfiguredError } from './cache.errors.js';
import { DEFAULT_NAMESPACE, NAMESPACE_PATTERN } from './cache.constants.js';
import { type CacheEntryOptions, CachePolicy, type ParsedNamespaceDefaults } from './cache.policy.js';
import { CacheRuntime } from './cache.runtime.js';
import type { EntryMeta } from './entry/envelope.js';
import { type Duration, toMilliseconds } from './duration.js';
import { escapeGlob, type KeyPattern } from './keys/key-part.js';
import type { InvalidationSource } from './metrics/cache.metrics.js';
import { type CacheLookup, type LoadRequest, NOT_FRESH_IN_L1, NOT_IN_L1, type StoredLookup } from './stampede/load-coordinator.js';
import type { CacheStats } from './metrics/cache-stats.js';
import { acceptOrPersist } from './write-behind/write-behind.protocol.js';
import { HashCache } from './structures/hash-cache.js';
import { Leaderboard } from './structures/leaderboard.js';
import { UniqueCounter } from './structures/unique-counter.js';

/** Namespace handles are kept per runtime: the interceptor asks for one on every request. */
const handles = new WeakMap<CacheRuntime, Map<string, CacheNamespace>>();

/** The method behind `getOrSet` that also hands out a hit's stored text; not part of the API. */
export const LOOKUP = Symbol('cachekit:lookup');

/** What `invalidate()` removes from one namespace. */
export interface InvalidationTargets {
  keys?: readonly string[];
  /**
   * per key, the version a change committed elsewhere produced: the key is evicted only if it
   * holds an older one, and a write-through of an older one will not land afterwards
   */
  versions?: Readonly<Record<string, number>>;
  tags?: readonly string[];
  patterns?: readonly KeyPattern[];
  /** ids of hash objects (`hash()`) */
  hashes?: readonly string[];
  /** hash objects whose id matches */
  hashPatterns?: readonly KeyPattern[];
}

/** how many key ids a namespace remembers per generation (see `CacheNamespace.ids`), and of keys up to what length */
const REMEMBERED_IDS_PER_GENERATION = 1024;
const REMEMBERED_KEY_LENGTH = 200;

/** The cache API for one namespace; keys and tags of different namespaces never meet. */
export class CacheNamespace {
  /** resolved policies by options object: decorator options are parsed once, not per call */
  private readonly policies = new WeakMap<object, CachePolicy>();
  /**
   * The ids of recently used keys, in two generations: a key is looked up in the current one, then
   * in the previous one (and moved back into the current one); when the current one is full it
   * becomes the previous one. A hit then finds its L1 entry by a string whose hash V8 has already
   * computed, instead of building and hashing `namespace:key` again (about 120 ns less per L1 hit on
   * the bench machine, docs/benchmarks.md). Bounded: at most 2 x 1,024 keys of up to 200
   * characters, under 2 MB per namespace.
   */
  private ids = new Map<string, string>();
  private previousIds = new Map<string, string>();
  /** the id of a tag of this namespace (tags and keys share the id space of their namespace) */
  private readonly tagId = (tag: string): string => this.id(tag);
  private readonly defaultPolicy: CachePolicy;

  constructor(
    protected readonly runtime: CacheRuntime,
    readonly name: string,
  ) {
    if (!NAMESPACE_PATTERN.test(name)) {
      throw new CacheInputError('CACHE_INVALID_KEY', `namespace must match ${NAMESPACE_PATTERN}; got ${JSON.stringify(name)}`);
    }
    this.defaultPolicy = this.resolve({});
  }

  /** A handle on another namespace of the same cache. */
  namespace(name: string): CacheNamespace {
    if (name === this.name) return this;
    let byName = handles.get(this.runtime);
    if (!byName) handles.set(this.runtime, (byName = new Map()));
    let handle = byName.get(name);
    if (!handle) byName.set(name, (handle = new CacheNamespace(this.runtime, name)));
    return handle;
  }

  /** The fresh value, `null` for a cached "not found", `undefined` for a miss. */
  async get<T>(key: string): Promise<T | null | undefined> {
    const id = this.id(key);
    const { store, metrics } = this.runtime;
    const found = store.readLocal(id) ?? (await store.readRemote(id));
    if (found && Date.now() < found.meta.f) {
      metrics.hit(this.name, found.layer);
      return found.value as T | null;
    }
    metrics.misses.inc({ namespace: this.name });
    return undefined;
  }

  /** Whether `get()` would answer a value (a fresh entry, a cached "not found" included); not counted as a lookup. */
  async has(key: string): Promise<boolean> {
    const id = this.id(key);
    const { store } = this.runtime;
    const found = store.readLocal(id) ?? (await store.readRemote(id));
    return found !== undefined && Date.now() < found.meta.f;
  }

  /** Stores known truth in both levels; a load of this key still running can no longer overwrite it. */
  async set<T>(key: string, value: T, options: CacheEntryOptions<T> = {}): Promise<void> {
    const id = this.id(key);
    this.runtime.loads.inflight.invalidate([id]);
    const meta = this.metaFor(value, this.policyFor(options), Date.now(), 0);
    if (meta) await this.runtime.store.write(id, value ?? null, meta, { as: 'known' });
    else await this.runtime.store.delete([id]);
  }

  /**
   * Write-through: `persist` commits to the database first; then the cache gets the committed
   * value, unless a newer version (`version(value)`, e.g. the row's version column) is already
   * there, so concurrent writers leave the later commit cached. A failed `persist` leaves the
   * cache untouched and its error reaches the caller. If the cache write fails after the commit
   * (Redis down), L1 holds the new value and the old one is deleted from Redis once it is back.
   */
  async writeThrough<T>(
    key: string,
    persist: () => Promise<T>,
    options: CacheEntryOptions<T> & { version: (value: T) => number },
  ): Promise<T> {
    const value = await persist();
    const id = this.id(key);
    this.runtime.loads.inflight.invalidate([id]);
    const policy = this.policyFor(options);
    const now = Date.now();
    const meta = this.metaFor(value, policy, now, 0);
    if (!meta) {
      await this.runtime.store.delete([id]);
      return value;
    }
    await this.runtime.store.write(id, value, { ...meta, g: options.version(value) }, { as: 'version' }, now);
    return value;
  }

  /**
   * Write-behind: the value is cached and accepted at once, and a BullMQ job persists it later
   * (the worker app runs it, with retries). Each accepted write gets a per-key version, taken
   * atomically in Redis; writes of one key still queued coalesce into the latest. If the queue
   * cannot be reached, `persistNow` writes synchronously instead (write-through), so an accepted
   * write is never lost; the answer says which happened. `persistNow` may answer the version it
   * wrote, if it had to take a higher one than offered (e.g. above the row's current version).
   */
  async writeBehind<T>(
    key: string,
    value: T,
    target: { entity: string; id: string | number; persistNow: (value: T, version: number) => Promise<void | number> },
    options: CacheEntryOptions<T> = {},
  ): Promise<{ version: number; mode: 'queued' | 'written' }> {
    const queue = this.runtime.writeBehind;
    if (!queue) {
      throw new CacheNotConfiguredError("writeBehind() needs WriteBehindModule.forRoot({ redis }) from '@cachekit/cache/write-behind'");
    }
    return acceptOrPersist(queue, { namespace: this.name, key, entity: target.entity, id: target.id }, value, target.persistNow, {
      write: (version) => this.writeThrough(key, async () => value, { ...options, version: () => version }),
      drop: () => this.delete(key),
    });
  }

  /**
   * The newest write-behind value of `key` accepted and not yet persisted (read-your-writes).
   * Compare its `version` with the one your row holds: once the row holds that version or a
   * newer one (or is gone), serve the row, not this value.
   */
  async pendingWrite<T>(key: string): Promise<{ version: number; value: T } | undefined> {
    const pending = await this.runtime.writeBehind?.pending(this.name, key).catch(() => undefined);
    return pending as { version: number; value: T } | undefined;
  }

  async delete(...keys: string[]): Promise<number> {
    return this.invalidate({ keys });
  }

  /**
   * Removes keys, tags, patterns and hash objects (by id, see `hash()`) of this namespace in one call; `source` labels the
   * `cache_invalidations_total` series. Answers how many entries went.
   */
  async invalidate(what: InvalidationTargets, source: InvalidationSource = 'api'): Promise<number> {
    const { store, loads, metrics } = this.runtime;
    const versioned = new Map(Object.entries(what.versions ?? {}).map(([key, version]) => [this.id(key), version]));
    const ids = (what.keys ?? []).map((key) => this.id(key)).filter((id) => !versioned.has(id));
    const tagIds = (what.tags ?? []).map((tag) => this.id(tag));
    const hashes = what.hashes ?? [];
    // An API call is counted by what it removes by; CDC and the bus keep their own source.
    const by = (kind: 'tag' | 'pattern') => (source === 'api' ? kind : source);
    const kinds: Array<{ count: number; source: InvalidationSource; endLoads?: () => void; run: () => Promise<number> }> = [
      {
        count: versioned.size,
        source,
        endLoads: () => loads.inflight.invalidate([...versioned.keys()]),
        run: () => store.evictOlder(versioned),
      },
      { count: ids.length, source, endLoads: () => loads.inflight.invalidate(ids), run: () => store.delete(ids) },
      {
        count: tagIds.length,
        source: by('tag'),
        endLoads: () => loads.inflight.invalidateTags(tagIds),
        run: () => store.invalidateTags(tagIds),
      },
      { count: hashes.length, source, run: () => store.deleteHashes(this.name, hashes) },
      ...(what.hashPatterns ?? []).map((pattern) => ({
        count: 1,
        source: by('pattern'),
        run: () => store.deleteHashesMatching(this.name, pattern.glob),
      })),
      ...(what.patterns ?? []).map((pattern) => ({
        count: 1,
        source: by('pattern'),
        endLoads: () => loads.inflight.invalidateAll(),
        run: () => store.deleteMatching(escapeGlob(`${this.name}:`) + pattern.glob),
      })),
    ];
    let deleted = 0;
    for (const kind of kinds) {
      if (kind.count === 0) continue;
      // The loads this makes stale end first: their values must not land afterwards.
      kind.endLoads?.();
      metrics.invalidations.inc({ namespace: this.name, source: kind.source }, kind.count);
      deleted += await kind.run();
    }
    return deleted;
  }

  /** Cache-aside: the cached value, or the loader's (stored before it is returned). */
  getOrSet<T>(key: string, loader: () => Promise<T> | T, options: CacheEntryOptions<T> = {}): Promise<T> {
    let id: string;
    let policy: CachePolicy;
    let local: unknown;
    try {
      id = this.id(key);
      policy = this.policyFor(options);
      local = this.runtime.loads.freshLocal(this.name, id, policy);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (local !== NOT_IN_L1 && local !== NOT_FRESH_IN_L1) return Promise.resolve(local as T);
    return this.runtime.loads.valueOf(this.request(id, policy, loader), local === NOT_IN_L1);
  }

  /**
   * `getOrSet` that also says how the value was found: `HIT`, `MISS` (the loader ran, here or in
   * the process holding the lock) or `STALE` (served within grace). See `CacheEntryOptions` for
   * TTL, grace, XFetch, the lock and timeouts.
   */
  getOrSetWithStatus<T>(key: string, loader: () => Promise<T> | T, options?: CacheEntryOptions<T>): Promise<CacheLookup<T>> {
    return this[LOOKUP](key, loader, options).then(({ value, status, layer }) => (layer ? { value, status, layer } : { value, status }));
  }

  /** @internal `getOrSetWithStatus` with the stored text of a hit (the HTTP interceptor sends it as it is). */
  [LOOKUP]<T>(key: string, loader: () => Promise<T> | T, options: CacheEntryOptions<T> = {}): Promise<StoredLookup<T>> {
    // Not `async` (a hit is answered with one promise less), so a bad key or option rejects here.
    try {
      return this.runtime.loads.getOrSet(this.request(this.id(key), this.policyFor(options), loader));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** What the read path needs for an id and policy already resolved. */
  private request<T>(id: string, policy: CachePolicy, loader: () => Promise<T> | T): LoadRequest<T> {
    return { namespace: this.name, id, loader, policy, tagId: this.tagId };
  }

  /**
   * Removes every entry of these tags (of this namespace), in both levels, through the tag index:
   * the cost grows with the entries of the tags, not with the size of Redis.
   */
  async invalidateTags(...tags: string[]): Promise<number> {
    return this.invalidate({ tags });
  }

  /**
   * Removes the keys of this namespace that match `pattern` (SCAN + UNLINK, never KEYS).
   * Build the pattern with the `glob` tag so that only your own wildcards act as wildcards.
   */
  async invalidatePattern(pattern: KeyPattern): Promise<number> {
    return this.invalidate({ patterns: [pattern] });
  }

  /** A leaderboard (one sorted set) of this namespace; with `ttl`, every write pushes its expiry out again. */
  leaderboard(name: string, options: { ttl?: Duration } = {}): Leaderboard {
    const ttlMs = options.ttl === undefined ? undefined : toMilliseconds(options.ttl, 'leaderboard ttl');
    return new Leaderboard(this.runtime.redis, this.runtime.keys.structure('leaderboard', this.id(name)), { ttlMs });
  }

  /**
   * Objects stored as Redis hashes: read or update one field without rewriting the object; the
   * TTL is kept. Behind the cache's circuit breaker: a failing Redis reads as a miss, and an
   * object whose update Redis missed is deleted as soon as it answers.
   */
  hash(options: { ttl: Duration }): HashCache {
    const { store } = this.runtime;
    return new HashCache(this.runtime.redis, this.runtime.keys.hashPrefix(this.name), {
      ttlMs: toMilliseconds(options.ttl, 'hash ttl'),
      tombstonePrefix: this.runtime.keys.hashTombstonePrefix(this.name),
      io: {
        // Invalidations Redis missed run before any hash command: until then the hashes may be stale.
        run: (command, run, fallback) => store.runOnRedis(command, run, fallback),
        lost: (id) => void store.deleteHashes(this.name, [id]),
      },
    });
  }

  /** A HyperLogLog per UTC day, each kept `retention` after its day ends. */
  uniqueCounter(name: string, options: { retention: Duration }): UniqueCounter {
    return new UniqueCounter(this.runtime.redis, `${this.runtime.keys.structure('unique', this.id(name))}:`, {
      retentionMs: toMilliseconds(options.retention, 'unique counter retention'),
    });
  }

  /** Throws a `CacheError` naming the option if `options` could not be used for a call (start-up checks). */
  checkOptions(options: CacheEntryOptions): void {
    this.resolve(options);
  }

  protected id(key: string): string {
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    const id = this.previousIds.get(key) ?? this.newId(key);
    if (key.length <= REMEMBERED_KEY_LENGTH) {
      if (this.ids.size >= REMEMBERED_IDS_PER_GENERATION) {
        this.previousIds = this.ids;
        this.ids = new Map();
      }
      this.ids.set(key, id);
    }
    return id;
  }

  private newId(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
      throw new CacheInputError('CACHE_INVALID_KEY', `a cache key must be a string of 1 to 1024 characters; got ${JSON.stringify(key)}`);
    }
    return `${this.name}:${key}`;
  }

  private policyFor(options: CacheEntryOptions): CachePolicy {
    let policy = this.policies.get(options);
    if (policy) return policy;
    if (Object.keys(options).length === 0) return this.defaultPolicy;
    policy = this.resolve(options);
    this.policies.set(options, policy);
    return policy;
  }

  /** `options` over this namespace's defaults and the module's TTLs. */
  private resolve(options: CacheEntryOptions): CachePolicy {
    const { namespaces, defaultTtl, negativeTtl } = this.runtime.config;
    const defaults: ParsedNamespaceDefaults = Object.hasOwn(namespaces, this.name) ? namespaces[this.name] : {};
    return new CachePolicy(options, defaults, { defaultTtl, negativeTtl });
  }

  private metaFor<T>(value: T, policy: CachePolicy, now: number, loadMs: number): EntryMeta | undefined {
    return policy.metaFor(value, now, loadMs, this.tagId);
  }
}

/** The cache: the `default` namespace, and `namespace(name)` for the others. */
@Injectable()
export class CacheService extends CacheNamespace {
  constructor(@Inject(CacheRuntime) runtime: CacheRuntime) {
    super(runtime, DEFAULT_NAMESPACE);
  }

  /**
   * Hit ratios per namespace and layer, L1 entries and bytes, and the cache Redis INFO figures
   * (`keyspace_hits`, `keyspace_misses`, `used_memory`, `evicted_keys`; null while Redis does not answer).
   */
  stats(): Promise<CacheStats> {
    return this.runtime.stats();
  }

  /** The Prometheus text of the cache's registry (`metrics.registry`, or the module's own). */
  async metrics(): Promise<{ contentType: string; body: string }> {
    const { registry } = this.runtime.metrics;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }
}
