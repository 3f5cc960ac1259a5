import type { EntryMeta } from '../entry/envelope.js';
import { deserializeValue, encodeEnvelope, serializeValue } from '../entry/serializer.js';
import type { MemoryItem, MemoryLayer } from './memory.layer.js';
import type { RedisLayer } from './redis.layer.js';

export type CacheLayerName = 'l1' | 'l2';

export interface StoredValue {
  value: unknown;
  meta: EntryMeta;
  layer: CacheLayerName;
}

interface SlidingItem extends MemoryItem {
  /** the expiry this process last pushed to L2, so L1 hits do not touch Redis every time */
  l2ExpiresAt?: number;
}

/** Reads go L1 then L2 (an L2 hit is promoted into L1 with its remaining TTL); writes go to both. */
export class TwoLevelStore {
  constructor(
    readonly l1: MemoryLayer | undefined,
    readonly l2: RedisLayer,
    private readonly l1MaxTtlMs: number,
  ) {}

  readLocal(key: string, now = Date.now()): StoredValue | undefined {
    const item = this.l1?.get(key) as SlidingItem | undefined;
    if (!item || now >= expiryOf(item.meta)) return undefined;
    if (item.meta.s !== undefined) this.slideLocal(key, item, now);
    return { value: deserializeValue(item.raw), meta: item.meta, layer: 'l1' };
  }

  async readRemote(key: string, now = Date.now()): Promise<StoredValue | undefined> {
    const envelope = await this.l2.get(key);
    if (!envelope) return undefined;
    const { v: value, ...meta } = envelope;
    if (meta.s !== undefined) {
      // The key still exists in Redis, so its sliding window has not run out: extend it.
      meta.f = Math.min(now + meta.s, meta.h);
      await this.l2.extend(key, meta.f);
    }
    if (now >= expiryOf(meta)) return undefined;
    const item: SlidingItem = { meta, raw: serializeValue(value), l2ExpiresAt: meta.f };
    this.setLocal(key, item, now);
    return { value, meta, layer: 'l2' };
  }

  async write(key: string, value: unknown, meta: EntryMeta, now = Date.now()): Promise<void> {
    const raw = serializeValue(value);
    const item: SlidingItem = { meta, raw, l2ExpiresAt: meta.f };
    this.setLocal(key, item, now);
    await this.l2.set(key, encodeEnvelope(meta, raw), expiryOf(meta) - now, meta.t);
  }

  async exists(key: string, now = Date.now()): Promise<boolean> {
    const item = this.l1?.get(key);
    if (item && now < expiryOf(item.meta)) return true;
    return this.l2.exists(key);
  }

  async delete(keys: readonly string[]): Promise<number> {
    for (const key of keys) this.l1?.delete(key);
    return this.l2.delete(keys);
  }

  async invalidateTags(tags: readonly string[]): Promise<number> {
    this.l1?.deleteTagged(tags);
    let deleted = 0;
    for (const tag of tags) deleted += await this.l2.invalidateTag(tag);
    return deleted;
  }

  /** `redisGlob` matches unprefixed keys in Redis; `localPattern` the same keys in L1. */
  async deleteMatching(redisGlob: string, localPattern: RegExp): Promise<number> {
    this.l1?.deleteMatching(localPattern);
    return this.l2.deleteMatching(redisGlob);
  }

  private setLocal(key: string, item: MemoryItem, now: number): void {
    this.l1?.set(key, item, Math.min(expiryOf(item.meta) - now, this.l1MaxTtlMs));
  }

  private slideLocal(key: string, item: SlidingItem, now: number): void {
    const window = item.meta.s as number;
    item.meta.f = Math.min(now + window, item.meta.h);
    this.setLocal(key, item, now);
    // Push the new expiry to Redis once it has moved by a tenth of the window.
    if (item.meta.f - (item.l2ExpiresAt ?? 0) >= window / 10) {
      item.l2ExpiresAt = item.meta.f;
      void this.l2.extend(key, item.meta.f);
    }
  }
}

/** When the entry stops being served at all: sliding entries at the end of their window. */
function expiryOf(meta: EntryMeta): number {
  return meta.s !== undefined ? meta.f : meta.h;
}
