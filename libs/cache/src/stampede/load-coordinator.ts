import { HttpException, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { bounded } from '../bounded.js';
import { CacheTimeoutError } from '../cache.errors.js';
import type { CachePolicy } from '../cache.policy.js';
import type { Lock, RedisLock } from './redis-lock.js';
import { type CacheLayerName, expiryOf, type StoredValue, type TwoLevelStore } from '../layers/two-level.store.js';
import type { CacheMetrics } from '../metrics/cache.metrics.js';
import { type InflightLoad, InflightLoads } from './inflight-loads.js';
import { SingleFlight } from './single-flight.js';
import { shouldRefreshEarly } from './xfetch.js';

export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

export interface CacheLookup<T> {
  value: T;
  status: CacheStatus;
  /** where a hit or a stale value came from */
  layer?: CacheLayerName;
}

/** A lookup with the JSON of a hit's value (the HTTP interceptor sends it without serializing the value again). */
export interface StoredLookup<T> extends CacheLookup<T> {
  json?: () => string;
}

/** What one `getOrSet` call brings: where, what to call, and how. */
export interface LoadRequest<T> {
  namespace: string;
  id: string;
  loader: () => Promise<T> | T;
  policy: CachePolicy;
  /** the id of a tag of the request's namespace */
  tagId: (tag: string) => string;
}

/** lock waiters look again after 5 ms, then back off to 50 ms */
const LOCK_POLL_MIN_MS = 5;
const LOCK_POLL_MAX_MS = 50;
const WARN_INTERVAL_MS = 10_000;
const MAX_BACKOFFS = 10_000;
/** a hung loader keeps its lock for at most this many lock TTLs */
const MAX_LOCK_EXTENSIONS = 30;

class SoftTimeout {}

/** What `freshLocal` answers for an L1 entry past its fresh time, or when XFetch is on: `find` decides. */
export const NOT_FRESH_IN_L1 = Symbol('not fresh in L1');
/** What `freshLocal` answers when L1 holds nothing for the id (or there is no L1): the read path goes on from L2. */
export const NOT_IN_L1 = Symbol('not in L1');

/** How an entry found in L1 or L2 is answered (steps 2 and 3), decided before anything is done. */
type Decision =
  /** fresh: served; `refreshEarly`: an XFetch roll also starts a background refresh */
  | { serve: 'hit'; refreshEarly: boolean }
  /** stale within grace: served now; `refresh`: a background refresh starts (not while fail-safe backs off) */
  | { serve: 'stale'; refresh: boolean }
  /** stale within grace without stale-while-revalidate: the loader is waited for, stale is its fallback */
  | { serve: 'load' };

/** Every decision there is, as constants: a hit allocates none. */
const DECISIONS = {
  hit: { serve: 'hit', refreshEarly: false },
  hitAndRefresh: { serve: 'hit', refreshEarly: true },
  stale: { serve: 'stale', refresh: false },
  staleAndRefresh: { serve: 'stale', refresh: true },
  load: { serve: 'load' },
} as const satisfies Record<string, Decision>;

/**
 * The read path of DESIGN.md section 3, in its steps:
 * 1. L1, then L2 (in the flight of the id: concurrent misses in this process read and load once);
 * 2. a fresh entry is a hit (XFetch may refresh it early in the background);
 * 3. a stale one within grace is served at once and refreshed in the background
 *    (stale-while-revalidate), or is the fallback of a load;
 * 4. a miss takes the Redis lock (one loader across processes, the others wait for its value);
 * 5. the loader runs under timeouts; if it fails, a stale value is served (fail-safe) and the
 *    loader backs off;
 * 6. its value lands only while its lock holds: a delete, a newer write or a tag invalidation
 *    since the load started keeps it out.
 * `decide` says what an entry calls for; the other methods carry it out.
 */
export class LoadCoordinator {
  private readonly logger = new Logger('CacheLoad');
  /** coalesces the L2 read and the load of concurrent misses of one id */
  private readonly flights = new SingleFlight();
  private readonly refreshes = new SingleFlight();
  readonly inflight = new InflightLoads();
  /** fail-safe: no new loader call for these ids before the time given */
  private readonly backoffUntil = new Map<string, number>();
  /** lock waiters, woken when the load they wait for fills L2 (here or, over the bus, elsewhere) */
  private readonly fillWaiters = new Map<string, Set<() => void>>();
  private lastWarnAt = 0;

  constructor(
    private readonly store: TwoLevelStore,
    private readonly lock: RedisLock,
    private readonly metrics: CacheMetrics,
  ) {}

  // Step 1: L1, then L2 ---------------------------------------------------------------------------

  /**
   * The path most calls take: the value of a fresh L1 hit (counted); `NOT_IN_L1` when L1 has
   * nothing (the read goes on from L2: `valueOf` with `notInLocal`); `NOT_FRESH_IN_L1` when the L1
   * entry is past its fresh time or XFetch may roll (`valueOf` reads and decides).
   */
  freshLocal(namespace: string, id: string, policy: CachePolicy): unknown {
    if (!this.store.hasLocal) return NOT_IN_L1;
    if (policy.xfetchBeta > 0) return NOT_FRESH_IN_L1;
    const now = Date.now();
    const item = this.store.localItem(id, now);
    if (!item) return NOT_IN_L1;
    if (now >= item.meta.f) return NOT_FRESH_IN_L1;
    this.metrics.hit(namespace, 'l1');
    return this.store.localValueOf(item);
  }

  /**
   * One lookup: counted once, by how it was answered (hit per layer, miss, stale). A fresh L1 hit
   * is answered without another promise in between.
   */
  getOrSet<T>(request: LoadRequest<T>): Promise<StoredLookup<T>> {
    const found = this.find(request);
    if (!(found instanceof Promise)) return Promise.resolve(this.counted(request.namespace, found));
    return found.then((lookup) => this.counted(request.namespace, lookup));
  }

  /**
   * `getOrSet`'s value alone: one promise less on the way of each call. `notInLocal`: `freshLocal`
   * has just answered `NOT_IN_L1` for this id, so L1 is not read again.
   */
  valueOf<T>(request: LoadRequest<T>, notInLocal: boolean): Promise<T> {
    const found = this.find(request, notInLocal);
    if (!(found instanceof Promise)) return Promise.resolve(this.counted(request.namespace, found).value);
    return found.then((lookup) => this.counted(request.namespace, lookup).value);
  }

  private find<T>(request: LoadRequest<T>, notInLocal = false): StoredLookup<T> | Promise<StoredLookup<T>> {
    if (notInLocal) return this.findInFlight(request);
    const now = Date.now();
    const local = this.store.readLocal(request.id, now);
    const decision = local && this.decide(request, local, now);
    if (decision) return this.answer(request, local!, decision, false);
    return this.findInFlight(request);
  }

  /** Past L1: the L2 read and the load, shared by concurrent callers of the id when single-flight is on. */
  private findInFlight<T>(request: LoadRequest<T>): Promise<StoredLookup<T>> {
    return request.policy.singleFlight ? this.flights.run(request.id, () => this.findRemote(request)) : this.findRemote(request);
  }

  /** Within the in-process flight of the id: the L2 read, then the load. */
  private findRemote<T>(request: LoadRequest<T>): Promise<StoredLookup<T>> {
    return this.store.readRemote(request.id).then((remote) => {
      const decision = remote && this.decide(request, remote);
      return decision ? this.answer(request, remote!, decision, true) : this.load(request, undefined);
    });
  }

  private counted<T>(namespace: string, lookup: StoredLookup<T>): StoredLookup<T> {
    if (lookup.status === 'HIT') this.metrics.hit(namespace, lookup.layer ?? 'l2');
    else if (lookup.status === 'STALE') this.metrics.staleServed.inc({ namespace });
    else this.metrics.misses.inc({ namespace });
    return lookup;
  }

  // Steps 2 and 3: fresh, or stale within grace ---------------------------------------------------

  /** What `entry` calls for; `undefined` once it is past its expiry (read as a miss). */
  private decide(request: Pick<LoadRequest<unknown>, 'id' | 'policy'>, entry: StoredValue, now = Date.now()): Decision | undefined {
    const { policy } = request;
    if (now >= expiryOf(entry.meta)) return undefined;
    if (now < entry.meta.f) {
      const refreshEarly = shouldRefreshEarly(entry.meta, policy.xfetchBeta, now) && this.loaderAllowed(request.id, now);
      return refreshEarly ? DECISIONS.hitAndRefresh : DECISIONS.hit;
    }
    // Grace without stale-while-revalidate is only a fallback: wait for the loader, serve stale if it fails or is slow.
    if (!policy.staleWhileRevalidate) return this.loaderAllowed(request.id, now) ? DECISIONS.load : DECISIONS.stale;
    return this.loaderAllowed(request.id, now) ? DECISIONS.staleAndRefresh : DECISIONS.stale;
  }

  /** Carries out a decision. `inFlight`: the caller already runs inside this id's flight. */
  private answer<T>(
    request: LoadRequest<T>,
    entry: StoredValue,
    decision: Decision,
    inFlight: boolean,
  ): StoredLookup<T> | Promise<StoredLookup<T>> {
    switch (decision.serve) {
      case 'hit':
        if (decision.refreshEarly) {
          this.metrics.earlyRefreshes.inc({ namespace: request.namespace });
          this.refreshInBackground(request, entry);
        }
        return lookupOf(entry, 'HIT');
      case 'stale':
        if (decision.refresh) this.refreshInBackground(request, entry);
        return lookupOf(entry, 'STALE');
      case 'load': {
        const load = () => this.load(request, entry);
        return request.policy.singleFlight && !inFlight ? this.flights.run(request.id, load) : load();
      }
    }
  }

  private refreshInBackground<T>(request: LoadRequest<T>, current: StoredValue): void {
    this.refreshes
      .run(request.id, () => this.load(request, current, true))
      .catch((error: unknown) => this.warn(`background refresh of ${request.id} failed: ${(error as Error).message}`));
  }

  /** Fail-safe's back-off: whether the loader of `id` may be called now. */
  private loaderAllowed(id: string, now: number): boolean {
    const until = this.backoffUntil.get(id);
    if (until === undefined) return true;
    if (now < until) return false;
    this.backoffUntil.delete(id);
    return true;
  }

  // Step 4: a miss takes the lock, or waits for the process that holds it ------------------------

  /**
   * Loads under the lock, or waits for the process that holds it. `stale` is what may be served
   * instead; `background` refreshes never wait for another process.
   */
  private async load<T>(request: LoadRequest<T>, stale: StoredValue | undefined, background = false): Promise<StoredLookup<T>> {
    const { id, policy } = request;
    const token = randomBytes(16).toString('hex');
    const lockTtlMs = policy.lockTtlMs;
    let lock: Lock | undefined;
    const attempt = await this.lock.acquire(id, token, lockTtlMs, tagIdsKnownBefore(request));
    if (attempt?.acquired) lock = { token, startedAt: attempt.startedAt, armedTags: attempt.armedTags };
    else if (attempt) {
      // Another process is loading this key.
      if (background) return lookupOf(stale as StoredValue, 'STALE');
      if (policy.lock) {
        const waited = await this.waitForOtherLoad(request, token);
        if ('value' in waited) return waited.value;
        lock = waited.lock;
        if (!lock && stale) return lookupOf(stale, 'STALE');
      }
    }
    if (lock) {
      // The previous holder may have filled the entry between our read and our lock
      // (for a refresh: with a value newer than the one being refreshed).
      const filled = await this.store.readRemote(id);
      if (filled && Date.now() < filled.meta.f && filled.meta.c > (stale?.meta.c ?? -1)) {
        await this.lock.release(id, token);
        return { value: filled.value as T, status: 'MISS' };
      }
    }
    return this.loadOrFallBack(request, lock, lockTtlMs, stale);
  }

  /**
   * Waits (bounded by `lock.wait`) until the lock holder's value appears, or the lock is free
   * (its holder finished without storing, or crashed and its TTL ran out) and we take it.
   */
  private async waitForOtherLoad<T>(request: LoadRequest<T>, token: string): Promise<{ value: CacheLookup<T> } | { lock?: Lock }> {
    const { id, namespace, policy } = request;
    if (policy.lock === false) return {};
    this.metrics.lockWaits.inc({ namespace });
    const deadline = Date.now() + policy.lock.waitMs;
    let pollMs = LOCK_POLL_MIN_MS;
    while (Date.now() < deadline) {
      await this.untilFilled(id, Math.min(pollMs, Math.max(deadline - Date.now(), 1)));
      pollMs = Math.min(pollMs * 2, LOCK_POLL_MAX_MS);
      const found = await this.store.readRemote(id);
      // The value of someone else's load: a MISS for this caller, like single-flight joiners.
      if (found && Date.now() < found.meta.f) return { value: { value: found.value as T, status: 'MISS' } };
      const attempt = await this.lock.acquire(id, token, policy.lock.ttlMs, tagIdsKnownBefore(request));
      if (!attempt) return {}; // Redis went away: load without the lock
      if (attempt.acquired) return { lock: { token, startedAt: attempt.startedAt, armedTags: attempt.armedTags } };
    }
    return {};
  }

  /** Wakes the lock waiters of these ids: their value is in L2 now. */
  notifyFilled(ids: readonly string[]): void {
    for (const id of ids) for (const wake of [...(this.fillWaiters.get(id) ?? [])]) wake();
  }

  /** Resolves when `id` is filled (see `notifyFilled`) or after `ms`, whichever comes first. */
  private untilFilled(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.fillWaiters.get(id);
      if (!waiters) this.fillWaiters.set(id, (waiters = new Set()));
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0) this.fillWaiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiters.add(wake);
    });
  }

  // Step 5: the loader, under timeouts; fail-safe --------------------------------------------------

  /** Runs the load; when it fails or is slow and a stale value is at hand, serves that instead. */
  private async loadOrFallBack<T>(
    request: LoadRequest<T>,
    lock: Lock | undefined,
    lockTtlMs: number,
    stale: StoredValue | undefined,
  ): Promise<StoredLookup<T>> {
    const { id, policy } = request;
    const task = this.runLoader(request, lock, lockTtlMs);
    task.catch(() => undefined); // the caller may stop waiting (timeouts); the load still ends cleanly
    try {
      const value = await withTimeouts(task, policy.loaderTimeouts(stale !== undefined), id);
      return { value, status: 'MISS' };
    } catch (error) {
      if (!stale) throw error;
      if (!isFailure(error)) {
        // The source answered (a 403, a 404): the stale value no longer holds, so it goes.
        await this.store.delete([id]);
        throw error;
      }
      if (this.backoffUntil.size >= MAX_BACKOFFS) this.backoffUntil.clear(); // bounded: forgetting one only allows an early retry
      this.backoffUntil.set(id, Date.now() + policy.failSafeBackoffMs);
      if (!(error instanceof SoftTimeout)) this.warn(`loader for ${id} failed, serving stale: ${(error as Error).message}`);
      return lookupOf(stale, 'STALE');
    }
  }

  /** Runs the loader once, keeps the lock alive meanwhile, and stores the value if it may land. */
  private async runLoader<T>(request: LoadRequest<T>, lock: Lock | undefined, lockTtlMs: number): Promise<T> {
    const { id, namespace } = request;
    const inflight = this.inflight.begin(id);
    let extensions = 0;
    const keepAlive = lock
      ? setInterval(
          () => {
            // A loader that hangs must not hold the key's lock forever.
            if (++extensions <= MAX_LOCK_EXTENSIONS) void this.lock.extend(id, lock.token, lockTtlMs);
          },
          Math.floor(lockTtlMs / 3),
        )
      : undefined;
    const started = performance.now();
    try {
      let value: T;
      try {
        value = await request.loader();
      } catch (error) {
        this.metrics.load(namespace, 'error', (performance.now() - started) / 1000);
        throw error;
      }
      const loadMs = performance.now() - started;
      this.metrics.load(namespace, 'success', loadMs / 1000);
      this.backoffUntil.delete(id);
      await this.land(request, value, loadMs, lock, inflight);
      return value;
    } catch (error) {
      if (lock) await this.lock.release(id, lock.token);
      throw error;
    } finally {
      clearInterval(keepAlive);
      this.inflight.end(inflight);
    }
  }

  // Step 6: the value lands only while its lock holds -----------------------------------------------

  /** Stores a loaded value, unless an invalidation came first (in this process: `inflight`; in Redis: the lock). */
  private async land<T>(request: LoadRequest<T>, value: T, loadMs: number, lock: Lock | undefined, inflight: InflightLoad): Promise<void> {
    const { id } = request;
    const now = Date.now();
    const meta = request.policy.metaFor(value, now, loadMs, request.tagId);
    if (meta && !this.inflight.isInvalidated(inflight, meta.t)) {
      if (await this.store.write(id, value ?? null, meta, { as: 'load', lock }, now)) this.notifyFilled([id]);
    } else if (lock) await this.lock.release(id, lock.token);
  }

  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_INTERVAL_MS) return;
    this.lastWarnAt = now;
    this.logger.warn(message);
  }
}

/** The ids of the tags a load will carry, when they do not depend on its value (their stamps are armed with the lock). */
function tagIdsKnownBefore(request: Pick<LoadRequest<unknown>, 'namespace' | 'policy'>): readonly string[] {
  return request.policy.tagIdsKnownBefore((tag) => `${request.namespace}:${tag}`);
}

/**
 * Whether fail-safe may cover this loader error: failures (a 5xx, a timeout, a lost connection)
 * yes; answers of the source (an HttpException below 500, an error marked `failSafe: false`) never.
 */
function isFailure(error: unknown): boolean {
  if (error instanceof HttpException) return error.getStatus() >= 500;
  return (error as { failSafe?: unknown } | null)?.failSafe !== false;
}

/** `softMs` rejects with SoftTimeout (serve stale), `hardMs` with CACHE_LOADER_TIMEOUT; the task keeps running. */
function withTimeouts<T>(task: Promise<T>, { softMs, hardMs }: { softMs?: number; hardMs?: number }, id: string): Promise<T> {
  const soft = bounded(task, softMs, () => new SoftTimeout());
  return bounded(soft, hardMs, () => new CacheTimeoutError(`loader for ${id} took longer than ${hardMs} ms`));
}

function lookupOf<T>(entry: StoredValue, status: 'HIT' | 'STALE'): StoredLookup<T> {
  return { value: entry.value as T, status, layer: entry.layer, json: entry.json };
}
