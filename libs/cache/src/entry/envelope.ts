/**
 * The one shape every stored value has, in L1 and in L2 (DESIGN.md section 3).
 * Times are epoch milliseconds.
 */
export interface CacheEnvelope<T = unknown> {
  /** the value; `null` is a cached "not found" (negative caching) */
  v: T;
  /** created at */
  c: number;
  /** fresh until */
  f: number;
  /** hard expiry: after it the entry is gone; for sliding entries the absolute cap */
  h: number;
  /** duration of the loader call that produced the value, in ms */
  d: number;
  /** tags */
  t?: string[];
  /** per-key generation the value was loaded under */
  g?: number;
  /** sliding window in ms: each read moves `f` to `min(now + s, h)` */
  s?: number;
}

export type EntryMeta = Omit<CacheEnvelope, 'v'>;

export function isEnvelope(value: unknown): value is CacheEnvelope {
  if (typeof value !== 'object' || value === null || !('v' in value)) return false;
  const e = value as Record<string, unknown>;
  return (
    typeof e.c === 'number' &&
    typeof e.f === 'number' &&
    typeof e.h === 'number' &&
    typeof e.d === 'number' &&
    (e.t === undefined || (Array.isArray(e.t) && e.t.every((tag) => typeof tag === 'string'))) &&
    (e.s === undefined || typeof e.s === 'number')
  );
}

/** The metadata without the value, in the field order the wire format uses. */
export function metaOf(e: EntryMeta): EntryMeta {
  const meta: EntryMeta = { c: e.c, f: e.f, h: e.h, d: e.d };
  if (e.t?.length) meta.t = e.t;
  if (e.g !== undefined) meta.g = e.g;
  if (e.s !== undefined) meta.s = e.s;
  return meta;
}
