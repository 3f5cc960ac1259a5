import { type EntryMeta, metaOf } from '../entry/envelope.js';
import type { InvalidationMessage } from '../invalidation/invalidation-bus.js';
import { KeyPattern } from '../keys/key-part.js';
import { deepFreeze, encodeEnvelope, serializedValueOf, serializeValue, wireJsonOf } from '../entry/serializer.js';
import { LRUCache } from 'lru-cache';
import { DeferredInvalidations } from './deferred-invalidations.js';
import type { MemoryItem, MemoryLayer } from './memory.layer.js';
import type { Lock, RedisLock } from '../stampede/redis-lock.js';
import type { RedisLayer } from './redis.layer.js';

export type CacheLayerName = 'l1' | 'l2';

/** What a write is (see `TwoLevelStore.write`). */
export type WriteKind = { as: 'known' } | { as: 'version' } | { as: 'load'; lock: Lock | undefined };

export interface StoredValue {
  value: unknown;
  meta: EntryMeta;
  layer: CacheLayerName;
  /** the JSON an HTTP response carries for the value (`wireJsonOf` its stored text): HTTP hits send it as it is */
  json?: () => string;
}

interface SlidingItem extends MemoryItem {
  /** the expiry this process last pushed to L2, so L1 hits do not touch Redis every time */
  l2ExpiresAt?: number;
}

/**
 * Reads go L1 then L2 (an L2 hit is promoted into L1 with its remaining TTL); writes go to both.
 * Entries are returned until their hard expiry; whether they are still fresh is the caller's call.
 * Every change is announced through `announce` (the bus), so other instances drop their L1 copy.
 */
export class TwoLevelStore {
  /** L2 invalidations that failed because Redis was down, run again when it answers */
  private readonly deferred = new DeferredInvalidations(
    () => this.l2.redis.status === 'ready',
    () => this.clearLocal(),
  );
  /**
   * Change epochs, so that an L2 read that was already on its way when an id changed locally
   * (a delete, a write, a message from another instance) cannot put the older value into L1.
   */
  private epoch = 0;
  /** the last epoch at which any id may have changed (tags, patterns, a cleared L1) */
  private everythingChangedAt = 0;
  private readonly changedAt = new LRUCache<string, number>({
    max: 10_000,
    // Forgetting an id's epoch must not let an older read through: count it as a change of all.
    dispose: (epoch, _id, reason) => {
      if (reason === 'evict') this.everythingChangedAt = Math.max(this.everythingChangedAt, epoch);
    },
  });

  /**
   * Tells the other instances (the bus) without waiting for Redis to confirm: the message is on
   * its way once this returns, and a write answers one round trip sooner. Lost messages are
   * covered as ever (L1 cleared when the bus reconnects, `l1.maxTtl`).
   */
  private tell(message: InvalidationMessage): void {
    void this.announce(message);
  }

  constructor(
    private readonly l1: MemoryLayer | undefined,
    private readonly l2: RedisLayer,
    private readonly lock: RedisLock,
    private readonly l1MaxTtlMs: number,
    private readonly announce: (message: InvalidationMessage) => Promise<void> = async () => undefined,
    /** values whose serialized form is larger are served but never stored; `tooLarge` is told */
    private readonly maxEntry: { bytes: number; tooLarge: (id: string, bytes: number) => void } = {
      bytes: Infinity,
      tooLarge: () => undefined,
    },
  ) {}

  /** The serialized value, or `undefined` (and the owner told) when it is over the entry size limit. */
  private serializeWithin(id: string, value: unknown): string | undefined {
    const raw = serializeValue(value);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only when it could matter.
    if (raw.length * 3 <= this.maxEntry.bytes) return raw;
    const bytes = Buffer.byteLength(raw);
    if (bytes <= this.maxEntry.bytes) return raw;
    this.maxEntry.tooLarge(id, bytes);
    return undefined;
  }

  /** Whether this process keeps an L1. */
  get hasLocal(): boolean {
    return this.l1 !== undefined;
  }

  localSize(): { entries: number; bytes: number } {
    return { entries: this.l1?.size ?? 0, bytes: this.l1?.bytes ?? 0 };
  }

  /** What an L1 hit on `item` (from `localItem`) hands out. */
  localValueOf(item: MemoryItem): unknown {
    return this.l1!.valueOf(item);
  }

  readLocal(id: string, now = Date.now()): StoredValue | undefined {
    const item = this.localItem(id, now);
    return item && { value: this.l1!.valueOf(item), meta: item.meta, layer: 'l1', json: () => this.l1!.jsonOf(id, item) };
  }

  /** The L1 item of `id` until its hard expiry (a sliding one is extended by the read), without its value. */
  localItem(id: string, now: number): MemoryItem | undefined {
    const item = this.l1?.get(id, now) as SlidingItem | undefined;
    if (!item || now >= expiryOf(item.meta)) return undefined;
    if (item.meta.s !== undefined) this.slideLocal(id, item, now);
    return item;
  }

  readRemote(id: string, now = Date.now()): Promise<StoredValue | undefined> {
    // Invalidations Redis missed run first: until they did, what L2 holds may be what they remove.
    // They run in the background; meanwhile reads answer "miss" (never a stall behind a backlog).
    if (!this.deferred.settledNow()) return Promise.resolve(undefined);
    const readAt = this.epoch;
    return this.l2.get(id).then((found) => {
      if (!found) return undefined;
      const meta = metaOf(found.envelope);
      if (meta.s === undefined) return this.received(id, found, meta, readAt, now);
      // The key still exists in Redis, so its sliding window has not run out: extend it.
      meta.f = Math.min(now + meta.s, meta.h);
      return this.l2.extend(id, meta.f).then(() => this.received(id, found, meta, readAt, now));
    });
  }

  /** An entry read from L2 at epoch `readAt`: answered, and promoted into L1 unless it changed since. */
  private received(
    id: string,
    found: { envelope: { v: unknown }; text: string },
    meta: EntryMeta,
    readAt: number,
    now: number,
  ): StoredValue | undefined {
    const value = found.envelope.v;
    if (now >= expiryOf(meta)) return undefined;
    const raw = serializedValueOf(found.text) ?? serializeValue(value);
    const json = () => wireJsonOf(raw);
    if (!this.l1 || !this.unchangedSince(id, readAt)) return { value, meta, layer: 'l2', json };
    const item: SlidingItem = { meta, raw, l2ExpiresAt: meta.f };
    // The value just parsed becomes L1's: with frozen values the one every hit hands out (this one
    // included); with copies the template of later hits, and this caller gets a copy of it.
    item.parsed = this.l1.frozen ? deepFreeze(value) : value;
    this.setLocal(id, item, now);
    // Its HTTP JSON, once asked for, is kept on the L1 entry for the hits that follow.
    return { value: this.l1.valueOf(item), meta, layer: 'l2', json: () => this.l1!.jsonOf(id, item) };
  }

  /**
   * The one write path, in both levels. `known`: known truth (a `set`), which ends any running
   * load's lock; `version`: a committed row version (write-through, `meta.g`), which lands only if
   * no newer one is there or was committed; `load`: a loaded value, which lands only while its load
   * holds `lock` (no invalidation or newer write came first; without a lock, Redis was down when
   * the load started: L1 only). Answers whether the value landed.
   */
  async write(id: string, value: unknown, meta: EntryMeta, how: WriteKind, now = Date.now()): Promise<boolean> {
    const raw = this.serializeWithin(id, value);
    if (raw === undefined) {
      // Too large to store: nothing older may stay in its place, and a load gives its lock back.
      if (how.as === 'known') await this.delete([id]);
      else if (how.as === 'version') await this.evictOlder(new Map([[id, meta.g as number]]));
      else if (how.lock) await this.lock.release(id, how.lock.token);
      return false;
    }
    const sentAt = this.epoch;
    // Known truth is in this process's L1 before Redis answers: a read here sees it at once.
    if (how.as === 'known') this.fillLocal(id, meta, raw, now);
    const landed = await this.writeRemote(id, meta, raw, how, now);
    if (landed === 'refused') return false;
    if (landed === 'unknown') {
      // Redis knew nothing of the key (never cached, or evicted with its floor): no value was
      // written there, so no copy here or elsewhere may keep an older one either.
      this.deleteLocal([id]);
      this.tell({ ids: [id] });
      return false;
    }
    // A load's value stays out of L1 if this id changed while it was on its way (a delete, a write).
    if (how.as === 'version' || (how.as === 'load' && this.unchangedSince(id, sentAt))) this.fillLocal(id, meta, raw, now);
    // What Redis did not take is deleted there once it answers (L1 holds the new value meanwhile).
    if (landed === 'failed' && how.as !== 'load') this.deferDelete([id]);
    if (how.as !== 'load') this.tell({ ids: [id] });
    else if (landed === 'written') this.tell({ filled: [id] });
    return true;
  }

  /** The L2 half of `write`: `skipped` for a load without a lock, `failed` if Redis did not answer. */
  private async writeRemote(
    id: string,
    meta: EntryMeta,
    raw: string,
    how: WriteKind,
    now: number,
  ): Promise<'written' | 'refused' | 'unknown' | 'failed' | 'skipped'> {
    const payload = encodeEnvelope(meta, raw);
    const ttlMs = expiryOf(meta) - now;
    const tagIds = meta.t ?? [];
    switch (how.as) {
      case 'known':
        return (await this.l2.set(id, payload, ttlMs, tagIds)) ? 'written' : 'failed';
      case 'version': {
        const landed = await this.l2.setVersioned(id, payload, ttlMs, tagIds, meta.g as number);
        return landed === 'older' ? 'refused' : (landed ?? 'failed');
      }
      case 'load': {
        if (!how.lock) return 'skipped';
        const landed = await this.l2.setIfLocked(id, payload, ttlMs, tagIds, how.lock);
        return landed === undefined ? 'failed' : landed ? 'written' : 'refused';
      }
    }
  }

  private fillLocal(id: string, meta: EntryMeta, raw: string, now: number): void {
    if (!this.l1) return;
    this.changed(id);
    this.setLocal(id, { meta, raw, l2ExpiresAt: meta.f } as SlidingItem, now);
  }

  /** Answers how many entries went from L2 (0 while Redis is down: the delete then waits for it). */
  async delete(ids: readonly string[]): Promise<number> {
    this.deleteLocal(ids);
    const deleted = await this.l2.delete(ids);
    if (deleted === undefined) this.deferDelete(ids);
    this.tell({ ids: [...ids] });
    return deleted ?? 0;
  }

  /**
   * Evicts entries that hold a version older than the given ones (a change committed elsewhere)
   * and raises their version floors; L1 copies go whatever they hold.
   */
  async evictOlder(versions: ReadonlyMap<string, number>): Promise<number> {
    const ids = [...versions.keys()];
    this.deleteLocal(ids);
    const deleted = await this.l2.evictOlder(versions);
    if (deleted === undefined) {
      this.deferred.add(async () => {
        if ((await this.l2.evictOlder(versions)) === undefined) return false;
        this.deleteLocal(ids);
        this.tell({ ids });
        return true;
      });
    }
    this.tell({ ids });
    return deleted ?? 0;
  }

  async invalidateTags(tagIds: readonly string[]): Promise<number> {
    this.changedAll();
    this.l1?.deleteTagged(tagIds);
    let deleted = 0;
    for (const tag of tagIds) {
      const removed = await this.l2.invalidateTag(tag);
      if (removed === undefined) {
        this.deferred.add(async () => {
          if ((await this.l2.invalidateTag(tag)) === undefined) return false;
          this.changedAll();
          this.l1?.deleteTagged([tag]);
          this.tell({ tags: [tag] });
          return true;
        });
      }
      deleted += removed ?? 0;
    }
    this.tell({ tags: [...tagIds] });
    return deleted;
  }

  /** Deletes the entries whose id matches `idGlob` (a Redis glob), in both levels. */
  async deleteMatching(idGlob: string): Promise<number> {
    this.changedAll();
    this.l1?.deleteMatching(KeyPattern.fromTrusted(idGlob).matcher());
    const deleted = await this.l2.deleteMatching(idGlob);
    if (deleted === undefined) {
      this.deferred.add(async () => {
        if ((await this.l2.deleteMatching(idGlob)) === undefined) return false;
        this.changedAll();
        this.l1?.deleteMatching(KeyPattern.fromTrusted(idGlob).matcher());
        this.tell({ globs: [idGlob] });
        return true;
      });
    }
    this.tell({ globs: [idGlob] });
    return deleted ?? 0;
  }

  /** Deletes hash objects by id; what Redis missed is run again when it answers. */
  async deleteHashes(namespace: string, hashIds: readonly string[]): Promise<number> {
    const deleted = await this.l2.deleteHashes(namespace, hashIds);
    if (deleted === undefined) this.deferred.add(async () => (await this.l2.deleteHashes(namespace, hashIds)) !== undefined);
    return deleted ?? 0;
  }

  async deleteHashesMatching(namespace: string, idGlob: string): Promise<number> {
    const deleted = await this.l2.deleteHashesMatching(namespace, idGlob);
    if (deleted === undefined) this.deferred.add(async () => (await this.l2.deleteHashesMatching(namespace, idGlob)) !== undefined);
    return deleted ?? 0;
  }

  /**
   * An L2 delete Redis missed, run again when it answers; then the L1 copies (which a read may
   * have refilled from the old L2 value meanwhile) go here and, over the bus, everywhere.
   */
  private deferDelete(ids: readonly string[]): void {
    this.deferred.add(async () => {
      if ((await this.l2.delete(ids)) === undefined) return false;
      this.deleteLocal(ids);
      this.tell({ ids: [...ids] });
      return true;
    });
  }

  /**
   * Runs a Redis command of a structure on this store's Redis (`hash()`): behind its circuit
   * breaker, and only once the invalidations Redis missed have run (until then it may be stale).
   */
  runOnRedis<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    return this.deferred.settledNow() ? this.l2.run(command, run, fallback) : Promise.resolve(fallback);
  }

  /** Runs the invalidations Redis missed (when it is back). */
  retryMissed(): void {
    void this.deferred.flush();
  }

  /** How many invalidations wait for Redis. */
  get missedCount(): number {
    return this.deferred.size;
  }

  /** Whether Redis is skipped for now (its circuit breaker is open). */
  get redisSkipped(): boolean {
    return this.l2.breakerOpen;
  }

  stop(): void {
    this.deferred.stop();
  }

  /** Another instance changed (or filled) these: drop our L1 copies. */
  applyRemote(message: InvalidationMessage): void {
    if (!this.l1) return;
    this.deleteLocal([...(message.ids ?? []), ...(message.filled ?? [])]);
    if (message.tags?.length || message.globs?.length) this.changedAll();
    if (message.tags?.length) this.l1.deleteTagged(message.tags);
    for (const glob of message.globs ?? []) this.l1.deleteMatching(KeyPattern.fromTrusted(glob).matcher());
  }

  clearLocal(): void {
    this.changedAll();
    this.l1?.clear();
  }

  private deleteLocal(ids: readonly string[]): void {
    for (const id of ids) {
      this.changed(id);
      this.l1?.delete(id);
    }
  }

  private changed(id: string): void {
    if (this.l1) this.changedAt.set(id, ++this.epoch);
  }

  private changedAll(): void {
    this.everythingChangedAt = ++this.epoch;
  }

  private unchangedSince(id: string, epoch: number): boolean {
    return this.everythingChangedAt <= epoch && (this.changedAt.get(id) ?? 0) <= epoch;
  }

  private setLocal(id: string, item: MemoryItem, now: number): void {
    this.l1?.set(id, item, Math.min(expiryOf(item.meta) - now, this.l1MaxTtlMs));
  }

  private slideLocal(id: string, item: SlidingItem, now: number): void {
    const window = item.meta.s as number;
    item.meta.f = Math.min(now + window, item.meta.h);
    this.setLocal(id, item, now);
    // Push the new expiry to Redis once it has moved by a tenth of the window.
    if (item.meta.f - (item.l2ExpiresAt ?? 0) >= window / 10) {
      item.l2ExpiresAt = item.meta.f;
      void this.l2.extend(id, item.meta.f);
    }
  }
}

/** When the entry stops being served at all: sliding entries at the end of their window. */
export function expiryOf(meta: EntryMeta): number {
  return meta.s !== undefined ? meta.f : meta.h;
}
