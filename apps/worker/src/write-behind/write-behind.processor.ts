import { OnWorkerEvent, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { type WriteBehindJob, WriteBehindRunner } from '@cachekit/cache/write-behind';
import { persistUserSettings, USER_SETTINGS_ENTITY, type UserSettings } from '@cachekit/users-domain';
import { type Job, UnrecoverableError } from 'bullmq';
import { DataSource } from 'typeorm';
import { WORKER_CONFIG, type WorkerConfig } from '../config/worker.config.js';

/** Stalled jobs (a killed worker's) are picked up again after `stalledInterval`. */
export const WRITE_BEHIND_WORKER_OPTIONS = { lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 3 };

/**
 * Persists write-behind jobs (`WorkerModule` binds it to the queue with `@Processor`). Retries (exponential backoff with jitter, set by the producer) on
 * any failure but the unrecoverable ones; a job that gives up evicts its cached value so readers
 * fall back to the database, and stays in the failed set (the dead-letter view). A job left
 * active by a killed worker is picked up again after `stalledInterval`.
 */
export class WriteBehindProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger('WriteBehindProcessor');

  constructor(
    private readonly runner: WriteBehindRunner,
    private readonly dataSource: DataSource,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.concurrency;
  }

  async process(job: Job<WriteBehindJob>): Promise<string> {
    const { entity, id } = job.data;
    if (entity !== USER_SETTINGS_ENTITY) throw new UnrecoverableError(`no persister for ${entity}`);
    const outcome = await this.runner.run(job.data, (value, version) =>
      persistUserSettings(this.dataSource, Number(id), value as UserSettings, version),
    );
    if (outcome === 'gone') throw new UnrecoverableError(`user ${id} no longer exists`);
    return outcome;
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job<WriteBehindJob> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const final =
      error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) {
      this.runner.retried();
      return;
    }
    this.logger.warn(`job ${job.id} gave up after ${job.attemptsMade} attempt(s): ${error.message}`);
    await this.runner.giveUp(job.data).catch((e: Error) => this.logger.warn(`could not evict after giving up: ${e.message}`));
  }
}
