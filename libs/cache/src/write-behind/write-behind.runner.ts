import { Inject, Injectable } from '@nestjs/common';
import { CacheService } from '../cache.service.js';
import type { WriteBehindJob } from './write-behind.port.js';
import { WriteBehindQueue } from './write-behind.queue.js';

/** What persisting one version did: written, refused as older than the row's, or no row to write to. */
export type PersistOutcome = 'written' | 'stale' | 'gone';

/**
 * The consumer side of write-behind, for the worker's processor: finds the pending value of a
 * job, skips it when a newer write of the key is pending (coalescing), persists it, settles it.
 */
@Injectable()
export class WriteBehindRunner {
  constructor(
    @Inject(WriteBehindQueue) private readonly queue: WriteBehindQueue,
    @Inject(CacheService) private readonly cache: CacheService,
  ) {}

  /**
   * `'superseded'`: a newer write of the key is pending (or already persisted), this one is
   * skipped. `'gone'`: nothing to write to; the caller should fail the job without retries.
   */
  async run(
    job: WriteBehindJob,
    persist: (value: unknown, version: number) => Promise<PersistOutcome>,
  ): Promise<'written' | 'superseded' | 'gone'> {
    const pending = await this.queue.pending(job.namespace, job.key);
    if (!pending || pending.version !== job.version) {
      this.queue.count('superseded');
      return 'superseded';
    }
    const outcome = await persist(pending.value, job.version);
    if (outcome === 'gone') return 'gone';
    await this.queue.settle(job.namespace, job.key, job.version);
    const status = outcome === 'written' ? 'written' : 'superseded';
    this.queue.count(status);
    return status;
  }

  /** A job that will not be retried again: readers fall back to the database's truth. */
  async giveUp(job: WriteBehindJob): Promise<void> {
    this.queue.count('failed');
    await this.queue.settle(job.namespace, job.key, job.version);
    await this.cache.namespace(job.namespace).delete(job.key);
  }

  retried(): void {
    this.queue.count('retried');
  }
}
