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
  readonly deferred = new DeferredInvalidations(
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
    readonly l1: MemoryLayer | undefined,
    readonly l2: RedisLayer,
    readonly lock: RedisLock,
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

  readLocal(id: string, now = Date.now()): StoredValue | undefined {
    const item = this.localItem(id, now);
    return item && { value: this.l1!.valueOf(item), meta: item.meta, layer: 'l1', json: () => (item.json ??= wireJsonOf(item.raw)) };
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
    return { value: this.l1.valueOf(item), meta, layer: 'l2', json };
  }

  /** Writes known truth to both levels (and ends any running load's lease in Redis). */
  async write(id: string, value: unknown, meta: EntryMeta, now = Date.now()): Promise<void> {
    const raw = this.serializeWithin(id, value);
    // Too large to store: the older value must not stay in its place.
    if (raw === undefined) return void (await this.delete([id]));
    this.changed(id);
    this.setLocal(id, { meta, raw, l2ExpiresAt: meta.f } as SlidingItem, now);
    if (!(await this.l2.set(id, encodeEnvelope(meta, raw), expiryOf(meta) - now, meta.t))) this.deferDelete([id]);
    this.tell({ ids: [id] });
  }

  /**
   * Writes a loaded value if its load still holds `lease` (no invalidation or newer write came
   * first). Without a lease (Redis was down when the load started) only L1 is written.
   * Answers whether the value landed.
   */
  async writeLoaded(id: string, value: unknown, meta: EntryMeta, lease: Lock | undefined, now = Date.now()): Promise<boolean> {
    const raw = this.serializeWithin(id, value);
    if (raw === undefined) {
      if (lease) await this.lock.release(id, lease.token);
      return false;
    }
    let filledL2 = false;
    const sentAt = this.epoch;
    if (lease) {
      const landed = await this.l2.setLeased(id, encodeEnvelope(meta, raw), expiryOf(meta) - now, meta.t ?? [], lease);
      if (landed === false) return false;
      filledL2 = landed === true;
    }
    // A change of this id while the fill was on its way (a delete, a write) keeps it out of L1.
    if (this.unchangedSince(id, sentAt)) {
      this.changed(id);
      this.setLocal(id, { meta, raw, l2ExpiresAt: meta.f } as SlidingItem, now);
    }
    if (filledL2) this.tell({ filled: [id] });
    return true;
  }

  /**
   * Writes a committed row version (write-through). `'older'`: a newer version is already
   * there (or was committed), nothing changed; `'failed'`: Redis did not answer, the caller must make sure
   * the old L2 value goes (L1 holds the new one).
   */
  async writeVersioned(
    id: string,
    value: unknown,
    meta: EntryMeta & { g: number },
    now = Date.now(),
  ): Promise<'written' | 'older' | 'unknown' | 'failed' | 'too-large'> {
    const raw = this.serializeWithin(id, value);
    if (raw === undefined) {
      // The committed row is newer than what is cached: the cached copy goes (and the version
      // floor rises, so an older write-through cannot land after it); readers load it.
      await this.evictOlder(new Map([[id, meta.g]]));
      return 'too-large';
    }
    const landed = await this.l2.setVersioned(id, encodeEnvelope(meta, raw), expiryOf(meta) - now, meta.t ?? [], meta.g);
    if (landed === 'older') return 'older';
    if (landed === 'unknown') {
      // Redis knew nothing of the key (never cached, or evicted with its floor): no value was
      // written there, so no copy here or elsewhere may keep an older one either.
      this.deleteLocal([id]);
      this.tell({ ids: [id] });
      return 'unknown';
    }
    this.changed(id);
    this.setLocal(id, { meta, raw, l2ExpiresAt: meta.f } as SlidingItem, now);
    if (landed === undefined) {
      // The committed value is in L1; the old one in L2 must go as soon as Redis is back.
      this.deferDelete([id]);
      return 'failed';
    }
    this.tell({ ids: [id] });
    return 'written';
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
