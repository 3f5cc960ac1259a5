import { bounded } from '../bounded.js';
import { CacheNotConfiguredError } from '../cache.errors.js';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { CacheRuntime } from '../cache.runtime.js';
import { redisUrlSchema } from '../cache.options.js';
import { durationSchema, parseOptions } from '../option-schemas.js';
import type { DurationOption } from '../duration.js';
import { deserializeValue, serializeValue } from '../entry/serializer.js';
import { escapeGlob, keyPart } from '../keys/key-part.js';
import { WriteBehindClock } from './write-behind.clock.js';
import { WRITE_BEHIND_OPTIONS } from './write-behind.module-definition.js';
import { NotQueued, type WriteBehindJob, type WriteBehindProducer, type WriteBehindStatus } from './write-behind.port.js';
import { WRITE_BEHIND_SCRIPTS } from './write-behind.scripts.js';

/** The default name of the BullMQ queue write-behind jobs go through; the worker app consumes it. */
export const WRITE_BEHIND_QUEUE = 'write-behind';

/** BullMQ's default key prefix: where 0.1 kept the queue, shared by every deployment. */
const LEGACY_QUEUE_PREFIX = 'bull';

/**
 * Where a deployment's write-behind queue lives on the queue Redis: BullMQ's queue `name` and key
 * `prefix`. The prefix is derived from the cache key prefix, so deployments with different key
 * prefixes never consume each other's jobs. The worker's `@Processor` must use both.
 */
export function writeBehindQueueAddress(keyPrefix: string, queueName: string = WRITE_BEHIND_QUEUE): { name: string; prefix: string } {
  return { name: queueName, prefix: `${keyPrefix}~bull` };
}

export interface WriteBehindModuleOptions {
  /** The queue Redis (give it `noeviction` and AOF: a queue must never lose keys). */
  redis: { url: string };
  /**
   * The BullMQ queue name, under a key prefix derived from the cache key prefix (see
   * `writeBehindQueueAddress`); the worker's `@Processor` must use both. Default `'write-behind'`.
   */
  queueName?: string;
  /** Attempts per job before it is dead-lettered. Default 12. */
  attempts?: number | string;
  /** First retry delay; retries back off exponentially with jitter. Default `'200ms'`. */
  backoff?: DurationOption;
  /** Bound on each queue Redis command. Default `'1s'`. */
  commandTimeout?: DurationOption;
  /**
   * `WriteBehindSweeper` (in the worker): every `every`, pending writes accepted more than
   * `after` ago that have no job are queued again. Defaults `'2s'` and `'5s'`.
   */
  sweep?: { every?: DurationOption; after?: DurationOption };
  /**
   * The queue name used by 0.1, under BullMQ's default prefix `bull`, shared by every
   * deployment: `WriteBehindSweeper` moves this deployment's jobs from it into its own queue.
   * Default: `queueName`; `false` turns it off.
   */
  legacyQueue?: string | false;
}

const queueNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z, a-z, 0-9, _ and -');

const optionsSchema = z.strictObject({
  redis: z.strictObject({ url: redisUrlSchema }),
  queueName: queueNameSchema.default(WRITE_BEHIND_QUEUE),
  attempts: z
    .union([
      z.number(),
      z
        .string()
        .regex(/^\s*\d+\s*$/)
        .transform(Number),
    ])
    .pipe(z.number().int().min(1).max(100))
    .default(12),
  backoff: durationSchema.default(200),
  commandTimeout: durationSchema.default(1_000),
  sweep: z.strictObject({ every: durationSchema.default(2_000), after: durationSchema.default(5_000) }).prefault({}),
  legacyQueue: z.union([queueNameSchema, z.literal(false)]).optional(),
});

/** A pending write the sweeper is to check. `entity` and `id` are absent in records written by 0.1. */
export interface DueWrite {
  namespace: string;
  key: string;
  version: number;
  entity?: string;
  id?: string | number;
}

/** Where the job of a due write is: in this queue (waiting, delayed or running), ended (completed or failed), still in the legacy queue, or nowhere. */
export type DueWriteJob = 'queued' | 'ended' | 'legacy' | 'missing';

/** A checked write's due entry comes back after this long (a job that ends settles it before). */
const RECHECK_MS = 60_000;

/**
 * The producer side of write-behind, on the queue Redis (`noeviction`, AOF: a queue must never
 * lose keys): versions, the pending value of each key, and the BullMQ jobs. Also what the worker
 * uses to read and settle pending writes, and what `WriteBehindSweeper` reconciles.
 */
@Injectable()
export class WriteBehindQueue implements WriteBehindProducer, OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('WriteBehind');
  private readonly redis: Redis;
  readonly config: z.output<typeof optionsSchema>;
  private readonly keyPrefix: string;
  private readonly address: { name: string; prefix: string };
  private readonly legacyName: string | undefined;
  private queue?: Queue;
  private legacy?: Queue;
  /** legacy jobs already copied into this queue that could not be removed there (a live old worker holds them) */
  private readonly moved = new Set<string>();
  private readonly jobs: Counter<'status'>;
  readonly clock: WriteBehindClock;

  constructor(@Inject(WRITE_BEHIND_OPTIONS) options: WriteBehindModuleOptions, @Inject(CacheRuntime) runtime: CacheRuntime) {
    this.config = parseOptions(optionsSchema, options, 'WriteBehindModule');
    this.keyPrefix = runtime.config.keyPrefix;
    this.address = writeBehindQueueAddress(this.keyPrefix, this.config.queueName);
    this.legacyName = this.config.legacyQueue === false ? undefined : (this.config.legacyQueue ?? this.config.queueName);
    this.clock = new WriteBehindClock();
    this.redis = new Redis(this.config.redis.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.config.commandTimeout,
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    this.redis.on('error', () => undefined);
    const registry = runtime.metrics.registry;
    this.jobs = new Counter({
      name: 'write_behind_jobs_total',
      help: 'Write-behind writes by status: accepted (queued), fallback (written through), written, superseded (coalesced), retried, failed, requeued (had no job)',
      labelNames: ['status'] as const,
      registers: [registry],
    });
    const queueDepth = () => this.queue?.getJobCountByTypes('waiting', 'delayed', 'active', 'prioritized');
    new Gauge({
      name: 'write_behind_queue_depth',
      help: 'Write-behind jobs not yet done',
      registers: [registry],
      async collect() {
        const depth = await queueDepth()?.catch(() => undefined);
        if (depth !== undefined) this.set(depth);
      },
    });
    runtime.attachWriteBehind(this);
  }

  /** The BullMQ queue name (the worker's `@Processor` must use the same, with `prefix`). */
  get name(): string {
    return this.address.name;
  }

  /** The BullMQ key prefix, derived from the cache key prefix. */
  get prefix(): string {
    return this.address.prefix;
  }

  /** The queue shared by every deployment by 0.1 (prefix `bull`) that the sweeper drains; `undefined` when turned off. */
  get legacyQueueName(): string | undefined {
    return this.legacyName;
  }

  async onModuleInit(): Promise<void> {
    const { Queue } = await import('bullmq');
    this.queue = new Queue(this.address.name, { connection: this.redis, prefix: this.address.prefix });
    this.queue.on('error', () => undefined);
    // The Queue connects the client; wait for it, bounded, so the first writes are not refused.
    await bounded(
      this.queue.waitUntilReady().then(() => this.syncClock()),
      this.config.commandTimeout,
      'the queue Redis',
    ).catch((error: Error) =>
      this.logger.warn(`queue Redis unreachable at start-up (${error.message}); writes fall back to write-through`),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
    await this.legacy?.close().catch(() => undefined);
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  /** Whether the queue Redis answers a PING within the command timeout (for a readiness check). */
  async ping(): Promise<boolean> {
    return this.redis.ping().then(
      (answer) => answer === 'PONG',
      () => false,
    );
  }

  count(status: WriteBehindStatus): void {
    this.jobs.inc({ status });
  }

  /**
   * Records `value` as the key's pending write and enqueues its job. Throws `NotQueued` if the
   * queue Redis fails, with the version if one was already taken (and made pending).
   */
  async enqueue(job: Omit<WriteBehindJob, 'version'>, value: unknown, alongside?: (version: number) => Promise<unknown>): Promise<number> {
    if (!this.queue) throw new NotQueued(undefined, new Error('write-behind queue not started'));
    let version: number;
    try {
      version = await this.accept(job, value);
    } catch (error) {
      throw new NotQueued(undefined, error);
    }
    const [added, beside] = await Promise.allSettled([this.addJob({ ...job, version }), alongside?.(version)]);
    if (added.status === 'rejected') throw new NotQueued(version, added.reason);
    if (beside.status === 'rejected') throw beside.reason;
    return version;
  }

  /**
   * The first half of `enqueue`: takes the version and makes `value` the key's pending write,
   * without a job (a job add that never happened is what `WriteBehindSweeper` repairs).
   */
  async accept(job: Omit<WriteBehindJob, 'version'>, value: unknown): Promise<number> {
    const record = `"e":${JSON.stringify(job.entity)},"i":${JSON.stringify(job.id)},"value":${serializeValue(value)}`;
    const sent = this.clock.now();
    const [version, queueNow] = (await WRITE_BEHIND_SCRIPTS.accept.run(
      this.redis,
      [this.versionKey(job.namespace, job.key), this.pendingKey(job.namespace), this.dueKey()],
      [job.key, record, String(this.clock.floor()), this.dueMember(job.namespace, job.key), this.config.sweep.after],
    )) as [string, string];
    this.clock.sync(Number(queueNow), sent, this.clock.now());
    this.clock.observe(Number(version));
    return Number(version);
  }

  fallbackVersion(): number {
    return this.clock.next();
  }

  observe(version: number): void {
    this.clock.observe(version);
  }

  async pending(namespace: string, key: string): Promise<{ version: number; value: unknown } | undefined> {
    const text = await this.redis.hget(this.pendingKey(namespace), key);
    if (text === null) return undefined;
    const parsed = deserializeValue(text) as { v: number; value: unknown };
    return { version: parsed.v, value: parsed.value };
  }

  async settle(namespace: string, key: string, version: number): Promise<void> {
    await WRITE_BEHIND_SCRIPTS.settle.run(
      this.redis,
      [this.pendingKey(namespace), this.dueKey()],
      [key, String(version), this.dueMember(namespace, key)],
    );
  }

  /** Jobs that exhausted their retries (or could never be written), newest first. */
  async deadLetters(
    limit = 100,
  ): Promise<Array<{ id?: string; data: WriteBehindJob; failedReason: string; attemptsMade: number; finishedOn?: number }>> {
    if (!this.queue) return [];
    const jobs = await this.queue.getFailed(0, limit - 1);
    return jobs.map((job) => ({
      id: job.id,
      data: job.data as WriteBehindJob,
      failedReason: job.failedReason,
      attemptsMade: job.attemptsMade,
      finishedOn: job.finishedOn,
    }));
  }

  // --- reconciliation, for WriteBehindSweeper ------------------------------------------------

  /** Claims up to `limit` pending writes whose check is due (accepted `sweep.after` ago, or checked a minute ago). */
  async claimDue(limit: number): Promise<DueWrite[]> {
    const flat = (await WRITE_BEHIND_SCRIPTS.due.run(this.redis, [this.dueKey()], [this.pendingKey(''), limit, RECHECK_MS])) as string[];
    const due: DueWrite[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const member = flat[i];
      const separator = member.indexOf(':');
      const record = deserializeValue(flat[i + 1]) as { v: number; e?: string; i?: string | number };
      due.push({
        namespace: member.slice(0, separator),
        key: member.slice(separator + 1),
        version: record.v,
        entity: record.e,
        id: record.i,
      });
    }
    return due;
  }

  /** Where the job of each write is, in one round trip. */
  async jobsOf(writes: readonly DueWrite[]): Promise<DueWriteJob[]> {
    if (!this.queue || writes.length === 0) return writes.map(() => 'missing');
    const pipeline = this.redis.pipeline();
    for (const write of writes) {
      const id = this.jobId(write);
      pipeline.hmget(this.queue.toKey(id), 'timestamp', 'finishedOn');
      if (this.legacyName) pipeline.exists(`${LEGACY_QUEUE_PREFIX}:${this.legacyName}:${id}`);
    }
    const replies = (await pipeline.exec()) ?? [];
    const step = this.legacyName ? 2 : 1;
    return writes.map((_, i) => {
      const [error, fields] = replies[i * step] as [Error | null, [string | null, string | null]];
      if (error) throw error;
      if (fields[0] !== null) return fields[1] === null ? 'queued' : 'ended';
      return this.legacyName && replies[i * step + 1][1] === 1 ? 'legacy' : 'missing';
    });
  }

  /** Queues the job of a pending write again (same job id: a job that exists is not duplicated). */
  async requeue(job: WriteBehindJob): Promise<void> {
    await this.addJob(job);
  }

  /**
   * Enters every pending write that is not in the due set yet (those accepted by 0.1), so the
   * sweeper checks them too. Answers how many were entered.
   */
  async indexPending(): Promise<number> {
    const hashPrefix = this.pendingKey('');
    const stream = this.redis.scanStream({ match: `${escapeGlob(hashPrefix)}*`, count: 500 });
    const [seconds] = await this.redis.time();
    const dueAt = Number(seconds) * 1000 + this.config.sweep.after;
    let entered = 0;
    for await (const hashes of stream as AsyncIterable<string[]>) {
      for (const hash of hashes) {
        const namespace = hash.slice(hashPrefix.length);
        const fields = await this.redis.hkeys(hash);
        for (let i = 0; i < fields.length; i += 500) {
          const batch = fields.slice(i, i + 500).flatMap((field) => [dueAt, this.dueMember(namespace, field)]);
          entered += await this.redis.zadd(this.dueKey(), 'NX', ...batch);
        }
      }
    }
    return entered;
  }

  /**
   * Moves this deployment's jobs (by job id) out of the legacy queue into its own: waiting and
   * delayed ones, and running ones whose worker is gone (no lock). Jobs of other deployments
   * stay where they are. Answers how many moved.
   */
  async drainLegacyQueue(limit = 500): Promise<number> {
    if (!this.legacyName || !this.queue) return 0;
    const base = `${LEGACY_QUEUE_PREFIX}:${this.legacyName}`;
    const lists = ['wait', 'delayed', 'prioritized', 'active'].map((type) => `${base}:${type}`);
    if ((await this.redis.exists(...lists)) === 0) return 0;
    if (!this.legacy) {
      const { Queue } = await import('bullmq');
      this.legacy = new Queue(this.legacyName, { connection: this.redis, prefix: LEGACY_QUEUE_PREFIX });
      this.legacy.on('error', () => undefined);
    }
    const waiting = await this.legacy.getJobs(['wait', 'delayed', 'prioritized'], 0, limit - 1, true);
    const running = await this.legacy.getJobs(['active'], 0, limit - 1, true);
    const locks = running.length ? await this.redis.exists(...running.map((job) => `${base}:${job.id}:lock`)) : 0;
    // A running job is moved only once none holds a lock (its old worker is gone): else that worker finishes it.
    const abandoned = locks === 0 ? running : await this.unlocked(base, running);
    let moved = 0;
    for (const job of [...waiting, ...abandoned]) {
      const data = job.data as WriteBehindJob;
      if (!job.id || this.moved.has(job.id) || !isJob(data) || job.id !== this.jobId(data)) continue;
      await this.addJob(data);
      moved++;
      await job.remove().catch(() => {
        if (this.moved.size > 10_000) this.moved.clear();
        this.moved.add(job.id!);
      });
    }
    return moved;
  }

  private async unlocked(base: string, jobs: Job[]): Promise<Job[]> {
    const held = await Promise.all(jobs.map((job) => this.redis.exists(`${base}:${job.id}:lock`)));
    return jobs.filter((_, i) => held[i] === 0);
  }

  private async syncClock(): Promise<void> {
    const sent = this.clock.now();
    const [seconds, micros] = await this.redis.time();
    this.clock.sync(Number(seconds) * 1_000_000 + Number(micros), sent, this.clock.now());
  }

  private async addJob(job: WriteBehindJob): Promise<void> {
    if (!this.queue) throw new CacheNotConfiguredError('the write-behind queue is not started');
    const data: WriteBehindJob = { namespace: job.namespace, key: job.key, entity: job.entity, id: job.id, version: job.version };
    await this.queue.add(job.entity, data, {
      jobId: this.jobId(job),
      attempts: this.config.attempts,
      backoff: { type: 'exponential', delay: this.config.backoff, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: false, // failed jobs stay: the dead-letter view
    });
  }

  /** One job per accepted version: adding it again (the sweeper, a legacy move) is a no-op while it exists. */
  private jobId(job: Pick<WriteBehindJob, 'namespace' | 'key' | 'version'>): string {
    return [this.keyPrefix, job.namespace, job.key, job.version].map((part) => keyPart(String(part))).join('.');
  }

  private versionKey(namespace: string, key: string): string {
    return `${this.keyPrefix}~wb:version:${namespace}:${key}`;
  }

  private pendingKey(namespace: string): string {
    return `${this.keyPrefix}~wb:pending:${namespace}`;
  }

  /** One sorted set for every namespace: member `namespace:key`, score the time (ms, queue clock) its check is due. */
  private dueKey(): string {
    return `${this.keyPrefix}~wb:due`;
  }

  private dueMember(namespace: string, key: string): string {
    return `${namespace}:${key}`;
  }
}

function isJob(data: unknown): data is WriteBehindJob {
  const job = data as Partial<WriteBehindJob> | null;
  return (
    typeof job === 'object' &&
    job !== null &&
    typeof job.namespace === 'string' &&
    typeof job.key === 'string' &&
    typeof job.entity === 'string' &&
    (typeof job.id === 'string' || typeof job.id === 'number') &&
    typeof job.version === 'number'
  );
}
