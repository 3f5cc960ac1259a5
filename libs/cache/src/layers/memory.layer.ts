import { LRUCache } from 'lru-cache';
import type { EntryMeta } from '../entry/envelope.js';

/** An L1 entry: metadata plus the value still serialized, so callers never share (and mutate) one object. */
export interface MemoryItem {
  meta: EntryMeta;
  raw: string;
}

export interface MemoryLayerOptions {
  maxItems: number;
  maxBytes: number;
}

const ITEM_OVERHEAD_BYTES = 96;

/** L1: a bounded in-process LRU (by entries and by approximate bytes), with a per-tag key index. */
export class MemoryLayer {
  private readonly lru: LRUCache<string, MemoryItem>;
  private readonly keysByTag = new Map<string, Set<string>>();

  constructor(options: MemoryLayerOptions) {
    this.lru = new LRUCache<string, MemoryItem>({
      max: options.maxItems,
      maxSize: options.maxBytes,
      // JS strings are UTF-16: two bytes a code unit.
      sizeCalculation: (item, key) => (item.raw.length + key.length) * 2 + ITEM_OVERHEAD_BYTES,
      dispose: (item, key) => this.unindex(key, item),
    });
  }

  get(key: string): MemoryItem | undefined {
    return this.lru.get(key);
  }

  set(key: string, item: MemoryItem, ttlMs: number): void {
    if (ttlMs <= 0) {
      this.lru.delete(key);
      return;
    }
    this.lru.set(key, item, { ttl: ttlMs });
    for (const tag of item.meta.t ?? []) {
      let keys = this.keysByTag.get(tag);
      if (!keys) this.keysByTag.set(tag, (keys = new Set()));
      keys.add(key);
    }
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  /** Deletes every entry that carries one of `tags`; returns how many went. */
  deleteTagged(tags: readonly string[]): number {
    let deleted = 0;
    for (const tag of tags) {
      for (const key of [...(this.keysByTag.get(tag) ?? [])]) {
        if (this.lru.delete(key)) deleted++;
      }
    }
    return deleted;
  }

  deleteMatching(matches: (key: string) => boolean): number {
    let deleted = 0;
    for (const key of [...this.lru.keys()]) {
      if (matches(key) && this.lru.delete(key)) deleted++;
    }
    return deleted;
  }

  clear(): void {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  private unindex(key: string, item: MemoryItem): void {
    for (const tag of item.meta.t ?? []) {
      const keys = this.keysByTag.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.keysByTag.delete(tag);
    }
  }
}
