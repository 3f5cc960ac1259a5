import { CacheUnavailableError } from '../cache.errors.js';

/**
 * What the cache needs of write-behind, without BullMQ: `WriteBehindModule`
 * (`@cachekit/cache/write-behind`) provides the implementation and attaches it to the cache.
 */

/** What a job carries: where the value is pending, and which version it is. Never the value itself. */
export interface WriteBehindJob {
  namespace: string;
  key: string;
  /** what to persist, for the worker to pick its persister: e.g. `'user-settings'` */
  entity: string;
  /** the row id */
  id: string | number;
  version: number;
}

/**
 * `write_behind_jobs_total` statuses; `requeued`: a pending write whose job was never added (the
 * producer timed out between accepting and queueing), queued again by the sweeper.
 */
export type WriteBehindStatus = 'accepted' | 'fallback' | 'written' | 'superseded' | 'retried' | 'failed' | 'requeued';

/** A write the queue did not take; `version` is set when it was already accepted (and is pending). */
export class NotQueued extends CacheUnavailableError {
  constructor(
    readonly version: number | undefined,
    cause: unknown,
  ) {
    super('CACHE_QUEUE_UNAVAILABLE', `write-behind queue unreachable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export interface WriteBehindProducer {
  /**
   * Takes the next version of the key, makes `value` its pending write and queues its job; throws
   * `NotQueued`. `alongside(version)` runs once the version is taken, at the same time as the job
   * is added (the cache write: the answer waits for one round trip instead of two); its error is
   * thrown after the job's outcome is known.
   */
  enqueue(job: Omit<WriteBehindJob, 'version'>, value: unknown, alongside?: (version: number) => Promise<unknown>): Promise<number>;
  /**
   * A version for a write the queue did not take (the synchronous fallback): from the queue's
   * clock as last measured by this process, above every version it has seen.
   */
  fallbackVersion(): number;
  /** A version a write ended up with elsewhere (e.g. the database raised it): later versions go above it. */
  observe(version: number): void;
  /** The newest accepted, not yet persisted write of a key, if any. */
  pending(namespace: string, key: string): Promise<{ version: number; value: unknown } | undefined>;
  /** The write of `version` is done (persisted, or given up): it stops being pending unless a newer one came. */
  settle(namespace: string, key: string, version: number): Promise<void>;
  count(status: WriteBehindStatus): void;
}
