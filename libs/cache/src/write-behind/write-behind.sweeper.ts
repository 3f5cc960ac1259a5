import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CacheService } from '../cache.service.js';
import { WriteBehindQueue } from './write-behind.queue.js';

/** Pending writes checked per claim; a sweep claims again while a claim comes back full. */
const BATCH = 200;

export interface SweepOutcome {
  /** pending writes that had no job and were queued again */
  requeued: number;
  /** pending writes that could not be queued again (written by 0.1, with no job anywhere) and were dropped */
  dropped: number;
  /** pending writes whose job had already ended (its settle was lost) */
  settled: number;
  /** jobs of this deployment moved from the legacy queue */
  moved: number;
}

/**
 * Reconciles write-behind in the worker: accepting a write is two round trips (take the version
 * and make the value pending, then add the job), so a producer that timed out between them leaves
 * a pending value with no job, which readers would see forever. Every `sweep.every`, pending
 * writes accepted more than `sweep.after` ago are checked: one with no job is queued again (same
 * job id), and its job then persists it, or drops it as older than the row or for a deleted row
 * (dead letter). Also moves this deployment's jobs out of the queue used by 0.1.
 * Register it in the worker app's providers (next to the processor).
 */
@Injectable()
export class WriteBehindSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WriteBehindSweeper');
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;
  private indexed = false;
  private failures = 0;

  constructor(
    @Inject(WriteBehindQueue) private readonly queue: WriteBehindQueue,
    @Inject(CacheService) private readonly cache: CacheService,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass: the legacy queue, then every pending write whose check is due. */
  async sweep(): Promise<SweepOutcome> {
    const outcome: SweepOutcome = { requeued: 0, dropped: 0, settled: 0, moved: 0 };
    // Pending writes accepted by 0.1 are not in the due set: enter them once, so that one whose
    // job is gone is not served forever (only with the legacy queue checked, where their jobs are).
    if (!this.indexed && this.queue.legacyQueueName !== undefined) {
      const entered = await this.queue.indexPending();
      if (entered) this.logger.log(`${entered} pending write(s) accepted by 0.1 are now checked too`);
    }
    this.indexed = true;
    outcome.moved = await this.queue.drainLegacyQueue();
    for (;;) {
      const due = await this.queue.claimDue(BATCH);
      const jobs = await this.queue.jobsOf(due);
      for (const [i, write] of due.entries()) {
        const job = jobs[i];
        if (job === 'queued' || job === 'legacy') continue; // its job persists or drops it (a legacy one once moved)
        if (job === 'ended') {
          // The job failed for good (or completed) but its settle was lost: do it now, as giveUp would.
          await this.queue.settle(write.namespace, write.key, write.version);
          await this.cache.namespace(write.namespace).delete(write.key);
          outcome.settled++;
        } else if (write.entity !== undefined && write.id !== undefined) {
          await this.queue.requeue({
            namespace: write.namespace,
            key: write.key,
            entity: write.entity,
            id: write.id,
            version: write.version,
          });
          this.queue.count('requeued');
          outcome.requeued++;
        } else {
          await this.queue.settle(write.namespace, write.key, write.version);
          await this.cache.namespace(write.namespace).delete(write.key);
          outcome.dropped++;
        }
      }
      if (due.length < BATCH) break;
    }
    return outcome;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .then(({ requeued, dropped, settled, moved }) => {
          if (this.failures) this.logger.log(`sweeping again after ${this.failures} failed pass(es)`);
          this.failures = 0;
          if (moved) this.logger.log(`moved ${moved} job(s) of this deployment out of the shared queue used by 0.1`);
          if (requeued + dropped + settled > 0) {
            this.logger.warn(
              `pending writes without a job: ${requeued} queued again, ${settled} settled (their job had ended), ${dropped} dropped (accepted by 0.1, no job left)`,
            );
          }
        })
        .catch((error: Error) => {
          // One line when it starts failing (the queue Redis is away), not one per pass.
          if (this.failures++ === 0) this.logger.warn(`sweep failed: ${error.message}; retrying every pass`);
        })
        .finally(() => this.schedule(this.queue.config.sweep.every));
    }, delayMs);
    this.timer.unref();
  }
}
