import { Inject, Injectable } from '@nestjs/common';
import { CacheError } from '../cache.errors.js';
import { CacheRuntime } from '../cache.runtime.js';
import { CacheService } from '../cache.service.js';
import type { WriteBehindJob, WriteBehindQueue } from './write-behind.queue.js';

/** What persisting one version did: written, refused as older than the row's, or no row to write to. */
export type PersistOutcome = 'written' | 'stale' | 'gone';

/**
 * The consumer side of write-behind, for the worker's processor: finds the pending value of a
 * job, skips it when a newer write of the key is pending (coalescing), persists it, settles it.
 */
@Injectable()
export class WriteBehindRunner {
  constructor(
    @Inject(CacheRuntime) private readonly runtime: CacheRuntime,
    private readonly cache: CacheService,
  ) {}

  /**
   * `'superseded'`: a newer write of the key is pending (or already persisted), this one is
   * skipped. `'gone'`: nothing to write to; the caller should fail the job without retries.
   */
  async run(job: WriteBehindJob, persist: (value: unknown, version: number) => Promise<PersistOutcome>): Promise<'written' | 'superseded' | 'gone'> {
    const queue = this.queue();
    const pending = await queue.pending(job.namespace, job.key);
    if (!pending || pending.version !== job.version) {
      queue.jobs.inc({ status: 'superseded' });
      return 'superseded';
    }
    const outcome = await persist(pending.value, job.version);
    if (outcome === 'gone') return 'gone';
    await queue.settle(job.namespace, job.key, job.version);
    queue.jobs.inc({ status: outcome === 'written' ? 'written' : 'superseded' });
    return outcome === 'written' ? 'written' : 'superseded';
  }

  /** A job that will not be retried again: readers fall back to the database's truth. */
  async giveUp(job: WriteBehindJob): Promise<void> {
    const queue = this.queue();
    queue.jobs.inc({ status: 'failed' });
    await queue.settle(job.namespace, job.key, job.version);
    await this.cache.namespace(job.namespace).delete(job.key);
  }

  retried(): void {
    this.queue().jobs.inc({ status: 'retried' });
  }

  private queue(): WriteBehindQueue {
    const queue = this.runtime.writeBehind;
    if (!queue) throw new CacheError('CACHE_INVALID_OPTION', 'WriteBehindRunner needs the CacheModule option `writeBehind`');
    return queue;
  }
}
