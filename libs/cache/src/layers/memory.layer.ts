import { LRUCache } from 'lru-cache';
import rfdc from 'rfdc';
import type { L1Values } from '../cache.options.js';
import type { EntryMeta } from '../entry/envelope.js';
import { deepFreeze, deserializeValue, wireJsonOf } from '../entry/serializer.js';

/**
 * An L1 entry: metadata, the value serialized (as L2 holds it), and, from its first hit, the value
 * parsed: a template that callers get copies of (`values: 'copies'`), never the template itself, so
 * they never share (and mutate) one object; or, with `values: 'frozen'`, the deep-frozen value all
 * callers share.
 */
export interface MemoryItem {
  meta: EntryMeta;
  raw: string;
  parsed?: unknown;
  /** the JSON an HTTP response carries for the value (Dates as ISO text), kept from its first HTTP hit */
  json?: string;
  /** when L1 lets the item go (`l1.maxTtl`, or the entry's own expiry if sooner) */
  until?: number;
}

/** Copies of parsed JSON values (plain objects, arrays, Dates): several times faster than parsing the text again. */
const copy = rfdc({ proto: false, circles: false });

export interface MemoryLayerOptions {
  maxItems: number;
  maxBytes: number;
  values?: L1Values;
}

const ITEM_OVERHEAD_BYTES = 96;

/** L1: a bounded in-process LRU (by entries and by approximate bytes), with a per-tag key index. */
export class MemoryLayer {
  private readonly lru: LRUCache<string, MemoryItem>;
  private readonly keysByTag = new Map<string, Set<string>>();

  readonly frozen: boolean;

  constructor(options: MemoryLayerOptions) {
    this.frozen = options.values === 'frozen';
    this.lru = new LRUCache<string, MemoryItem>({
      max: options.maxItems,
      maxSize: options.maxBytes,
      // Two bytes a UTF-16 code unit (V8 keeps most JSON in one byte a character: an upper bound),
      // and the parsed value counted as large as its text again (objects take more than their JSON,
      // strings and numbers less): an estimate, so that maxBytes bounds both forms.
      // The HTTP JSON of a value holding Dates (`json`, see `jsonOf`) differs from its text: counted too.
      sizeCalculation: (item, key) =>
        (item.raw.length * 2 + (item.json === undefined || item.json === item.raw ? 0 : item.json.length) + key.length) * 2 +
        ITEM_OVERHEAD_BYTES,
      dispose: (item, key) => this.unindex(key, item),
    });
  }

  /** The item, unless its time in L1 is over (then it goes). */
  get(key: string, now = Date.now()): MemoryItem | undefined {
    const item = this.lru.get(key);
    if (item === undefined || now < (item.until as number)) return item;
    this.lru.delete(key);
    return undefined;
  }

  /** What a hit hands out: a copy of the value, or (`values: 'frozen'`) the entry's one frozen value. */
  valueOf(item: MemoryItem): unknown {
    if (this.frozen) return (item.parsed ??= deepFreeze(deserializeValue(item.raw)));
    const template = (item.parsed ??= deserializeValue(item.raw));
    return typeof template === 'object' && template !== null ? copy(template) : template;
  }

  set(key: string, item: MemoryItem, ttlMs: number): void {
    if (ttlMs <= 0) {
      this.lru.delete(key);
      return;
    }
    // The expiry is kept on the item and checked on read (lru-cache's own TTL costs every get a clock
    // read); an expired item that is never read again leaves with the least recently used.
    item.until = Date.now() + ttlMs;
    this.hold(key, item);
  }

  /**
   * The JSON an HTTP response carries for the value of `item` (Dates as ISO text), kept from the
   * first time it is asked for. When it differs from the stored text, the entry held at `key` is
   * replaced by one that keeps it, so that its size counts it.
   */
  jsonOf(key: string, item: MemoryItem): string {
    if (item.json !== undefined) return item.json;
    const json = wireJsonOf(item.raw);
    if (json === item.raw) item.json = json;
    else if (this.lru.peek(key) === item) this.hold(key, { ...item, json });
    return json;
  }

  private hold(key: string, item: MemoryItem): void {
    this.lru.set(key, item);
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
