import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { CacheRuntime } from '../cache.runtime.js';
import { durationSchema, parseOptions, redisUrlSchema } from '../cache.options.js';
import type { DurationOption } from '../duration.js';
import { deserializeValue, serializeValue } from '../entry/serializer.js';
import { keyPart } from '../keys/key-part.js';
import { WRITE_BEHIND_OPTIONS } from './write-behind.module-definition.js';
import { NotQueued, type WriteBehindJob, type WriteBehindProducer, type WriteBehindStatus } from './write-behind.port.js';

/** The default name of the BullMQ queue write-behind jobs go through; the worker app consumes it. */
export const WRITE_BEHIND_QUEUE = 'write-behind';

export interface WriteBehindModuleOptions {
  /** The queue Redis (give it `noeviction` and AOF: a queue must never lose keys). */
  redis: { url: string };
  /** The BullMQ queue name; the worker's `@Processor` must use the same. Default `'write-behind'`. */
  queueName?: string;
  /** Attempts per job before it is dead-lettered. Default 12. */
  attempts?: number | string;
  /** First retry delay; retries back off exponentially with jitter. Default `'200ms'`. */
  backoff?: DurationOption;
  /** Bound on each queue Redis command. Default `'1s'`. */
  commandTimeout?: DurationOption;
}

const optionsSchema = z.strictObject({
  redis: z.strictObject({ url: redisUrlSchema }),
  queueName: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z, a-z, 0-9, _ and -')
    .default(WRITE_BEHIND_QUEUE),
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
});

// Takes the next version of a key (Redis time in µs, and above the last one even if the clock
// stepped back) and makes the value the key's pending write. KEYS: version, pending hash.
// ARGV: field, serialized value. Answers the version as text (exact beyond 2^31).
const ACCEPT = `
local t = redis.call('TIME')
local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last >= v then v = last + 1 end
local version = string.format('%.0f', v)
redis.call('SET', KEYS[1], version)
redis.call('HSET', KEYS[2], ARGV[1], '{"v":' .. version .. ',"value":' .. ARGV[2] .. '}')
return version`;

// Drops the pending write if it is still the given version. KEYS: pending hash. ARGV: field, version.
const SETTLE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^{"v":(%d+),') == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

/**
 * The producer side of write-behind, on the queue Redis (`noeviction`, AOF: a queue must never
 * lose keys): versions, the pending value of each key, and the BullMQ jobs. Also what the worker
 * uses to read and settle pending writes.
 */
@Injectable()
export class WriteBehindQueue implements WriteBehindProducer, OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('WriteBehind');
  private readonly redis: Redis;
  private readonly config: z.output<typeof optionsSchema>;
  private readonly keyPrefix: string;
  private queue?: Queue;
  private readonly jobs: Counter<'status'>;

  constructor(@Inject(WRITE_BEHIND_OPTIONS) options: WriteBehindModuleOptions, @Inject(CacheRuntime) runtime: CacheRuntime) {
    this.config = parseOptions(optionsSchema, options, 'WriteBehindModule');
    this.keyPrefix = runtime.config.keyPrefix;
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
      help: 'Write-behind writes by status: accepted (queued), fallback (written through), written, superseded (coalesced), retried, failed',
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

  /** The BullMQ queue name (the worker's `@Processor` must use the same). */
  get name(): string {
    return this.config.queueName;
  }

  async onModuleInit(): Promise<void> {
    const { Queue } = await import('bullmq');
    this.queue = new Queue(this.config.queueName, { connection: this.redis });
    this.queue.on('error', () => undefined);
    // The Queue connects the client; wait for it, bounded, so the first writes are not refused.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${this.config.commandTimeout} ms`)), this.config.commandTimeout);
    });
    await Promise.race([this.queue.waitUntilReady(), timeout])
      .catch((error: Error) =>
        this.logger.warn(`queue Redis unreachable at start-up (${error.message}); writes fall back to write-through`),
      )
      .finally(() => clearTimeout(timer));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
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
  async enqueue(job: Omit<WriteBehindJob, 'version'>, value: unknown): Promise<number> {
    if (!this.queue) throw new NotQueued(undefined, new Error('write-behind queue not started'));
    let version: number;
    try {
      version = Number(
        await this.redis.eval(
          ACCEPT,
          2,
          this.versionKey(job.namespace, job.key),
          this.pendingKey(job.namespace),
          job.key,
          serializeValue(value),
        ),
      );
    } catch (error) {
      throw new NotQueued(undefined, error);
    }
    const data: WriteBehindJob = { ...job, version };
    await this.queue
      .add(job.entity, data, {
        jobId: [this.keyPrefix, job.namespace, job.key, version].map((part) => keyPart(String(part))).join('.'),
        attempts: this.config.attempts,
        backoff: { type: 'exponential', delay: this.config.backoff, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: false, // failed jobs stay: the dead-letter view
      })
      .catch((error: unknown) => {
        throw new NotQueued(version, error);
      });
    return version;
  }

  async pending(namespace: string, key: string): Promise<{ version: number; value: unknown } | undefined> {
    const text = await this.redis.hget(this.pendingKey(namespace), key);
    if (text === null) return undefined;
    const parsed = deserializeValue(text) as { v: number; value: unknown };
    return { version: parsed.v, value: parsed.value };
  }

  async settle(namespace: string, key: string, version: number): Promise<void> {
    await this.redis.eval(SETTLE, 1, this.pendingKey(namespace), key, String(version));
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

  private versionKey(namespace: string, key: string): string {
    return `${this.keyPrefix}~wb:version:${namespace}:${key}`;
  }

  private pendingKey(namespace: string): string {
    return `${this.keyPrefix}~wb:pending:${namespace}`;
  }
}
