import { NotQueued, type WriteBehindJob, type WriteBehindProducer } from './write-behind.port.js';

/** What the write-behind protocol needs of the cache for one key. */
export interface WriteBehindCache {
  /** writes the value with its version (a write-through) */
  write: (version: number) => Promise<unknown>;
  /** drops the key (a value that was cached but will never be persisted) */
  drop: () => Promise<unknown>;
}

/**
 * One write-behind write: accepted by the queue (version taken, value pending, job added, the cache
 * written beside the job add), or, when the queue does not take it, persisted at once. A version
 * already taken is reused then, so its pending value and the row agree; else one from the same
 * clock as the queue's (as last measured here, never below a version seen here).
 */
export async function acceptOrPersist<T>(
  queue: WriteBehindProducer,
  job: Omit<WriteBehindJob, 'version'>,
  value: T,
  persistNow: (value: T, version: number) => Promise<void | number>,
  cache: WriteBehindCache,
): Promise<{ version: number; mode: 'queued' | 'written' }> {
  try {
    const version = await queue.enqueue(job, value, cache.write);
    queue.count('accepted');
    return { version, mode: 'queued' };
  } catch (error) {
    if (!(error instanceof NotQueued)) throw error;
    const accepted = error.version;
    let version = accepted ?? queue.fallbackVersion();
    try {
      const persisted = await persistNow(value, version);
      if (typeof persisted === 'number') version = persisted;
      queue.observe(version);
    } catch (persistError) {
      // Not written anywhere: the value the cache got beside the failed job add must go.
      if (accepted !== undefined) await cache.drop();
      throw persistError;
    } finally {
      if (accepted !== undefined) await queue.settle(job.namespace, job.key, accepted).catch(() => undefined);
    }
    queue.count('fallback');
    await cache.write(version);
    return { version, mode: 'written' };
  }
}
