import { z } from 'zod';
import type { Duration } from '../../duration.js';
import type { InvalidationTargets } from '../../cache.service.js';
import { countSchema, durationSchema } from '../../option-schemas.js';

/** What the trigger sends: ids only (a NOTIFY payload is limited to 8000 bytes). */
export interface CdcNotification {
  table: string;
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  id: string | number;
  /** the row's version after the change, when the trigger sends it */
  version?: number;
  /** when the row changed, epoch seconds (for `cdc_lag_seconds`) */
  ts?: number;
}

/** What one notification, or a resync, evicts in one namespace. */
export interface CdcInvalidation extends InvalidationTargets {
  namespace: string;
}

export interface CacheCdcOptions {
  /** PostgreSQL URL: the listener holds one dedicated connection on it, never a pooled one. */
  connectionString: string;
  /** The NOTIFY channel the trigger sends on. Default `'cache_invalidation'`. */
  channel?: string;
  /** The keys and tags a change evicts; `undefined` or `[]` for none. */
  map: (notification: CdcNotification) => CdcInvalidation | readonly CdcInvalidation[] | undefined;
  /**
   * Everything the map covers. NOTIFY has no replay, so after every reconnect this is evicted,
   * so that changes made while the listener was away are not missed.
   */
  resync: () => readonly CdcInvalidation[];
  /** Reconnect backoff bounds. Default `'100ms'` to `'5s'`. */
  reconnect?: { minDelay?: Duration; maxDelay?: Duration };
  /** Bound on opening the connection and on LISTEN; past it, the attempt counts as failed. Default `'5s'`. */
  connectTimeout?: Duration;
  /**
   * A round trip (`SELECT 1`) on the LISTEN connection every `interval`: if it fails or takes longer
   * than `timeout`, the connection is dropped, opened again and a resync runs, as after any lost
   * connection. A network path that goes silent closes nothing, and would otherwise lose
   * notifications unnoticed. Default `{ interval: '5s', timeout: '2s' }`.
   */
  heartbeat?: { interval?: Duration; timeout?: Duration };
  /**
   * Notifications are queued and applied one batch at a time: everything queued, up to `size`,
   * coalesced into one `invalidate()` per namespace. Beyond `maxQueued` waiting notifications the
   * queue is dropped and a resync runs instead. Default `{ size: 1000, maxQueued: 100000 }`.
   */
  batch?: { size?: number; maxQueued?: number };
  /** Also resync on the first connection (the cache may predate this process). Default `false`. */
  resyncOnStart?: boolean;
}

const positiveDuration = durationSchema.pipe(z.number().positive('must be above zero'));

/** The listener's settings from `CacheCdcOptions`, defaults filled in, durations in milliseconds (checked at start-up). */
export const cdcSettingsSchema = z.object({
  channel: z.string().min(1).default('cache_invalidation'),
  reconnect: z.strictObject({ minDelay: durationSchema.default(100), maxDelay: durationSchema.default(5_000) }).prefault({}),
  connectTimeout: positiveDuration.default(5_000),
  heartbeat: z.strictObject({ interval: positiveDuration.default(5_000), timeout: positiveDuration.default(2_000) }).prefault({}),
  batch: z.strictObject({ size: countSchema.default(1_000), maxQueued: countSchema.default(100_000) }).prefault({}),
  resyncOnStart: z.boolean().default(false),
});
