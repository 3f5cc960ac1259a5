import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import { deserializeValue, serializeValue } from '../entry/serializer.js';
import { keyPart } from '../keys/key-part.js';

/** A write the queue did not take; `version` is set when it was already accepted (and is pending). */
export class NotQueued extends Error {
  constructor(
    readonly version: number | undefined,
    cause: unknown,
  ) {
    super(`write-behind queue unreachable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** The BullMQ queue write-behind jobs go through; the worker app consumes it. */
export const WRITE_BEHIND_QUEUE = 'write-behind';

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

export interface WriteBehindConfig {
  url: string;
  /** the cache's key prefix: apps sharing a queue Redis never meet in its keys or job ids */
  keyPrefix: string;
  queueName: string;
  attempts: number;
  backoffMs: number;
  commandTimeoutMs: number;
}

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
export class WriteBehindQueue {
  private readonly logger = new Logger('WriteBehind');
  readonly redis: Redis;
  private queue?: Queue;
  readonly jobs: Counter<'status'>;

  constructor(
    readonly config: WriteBehindConfig,
    registry: Registry,
  ) {
    this.redis = new Redis(config.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: config.commandTimeoutMs,
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    this.redis.on('error', () => undefined);
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
  }

  async start(): Promise<void> {
    const { Queue } = await import('bullmq');
    this.queue = new Queue(this.config.queueName, { connection: this.redis });
    this.queue.on('error', () => undefined);
    // The Queue connects the client; wait for it, bounded, so the first writes are not refused.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${this.config.commandTimeoutMs} ms`)), this.config.commandTimeoutMs);
    });
    await Promise.race([this.queue.waitUntilReady(), timeout])
      .catch((error: Error) => this.logger.warn(`queue Redis unreachable at start-up (${error.message}); writes fall back to write-through`))
      .finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
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
        await this.redis.eval(ACCEPT, 2, this.versionKey(job.namespace, job.key), this.pendingKey(job.namespace), job.key, serializeValue(value)),
      );
    } catch (error) {
      throw new NotQueued(undefined, error);
    }
    const data: WriteBehindJob = { ...job, version };
    await this.queue.add(job.entity, data, {
      jobId: [this.config.keyPrefix, job.namespace, job.key, version].map((part) => keyPart(String(part))).join('.'),
      attempts: this.config.attempts,
      backoff: { type: 'exponential', delay: this.config.backoffMs, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: false, // failed jobs stay: the dead-letter view
    }).catch((error: unknown) => {
      throw new NotQueued(version, error);
    });
    return version;
  }

  /** The newest accepted, not yet persisted write of a key, if any. */
  async pending(namespace: string, key: string): Promise<{ version: number; value: unknown } | undefined> {
    const text = await this.redis.hget(this.pendingKey(namespace), key);
    if (text === null) return undefined;
    const parsed = deserializeValue(text) as { v: number; value: unknown };
    return { version: parsed.v, value: parsed.value };
  }

  /** The write of `version` is done (persisted, or given up): it stops being pending unless a newer one came. */
  async settle(namespace: string, key: string, version: number): Promise<void> {
    await this.redis.eval(SETTLE, 1, this.pendingKey(namespace), key, String(version));
  }

  /** Jobs that exhausted their retries (or could never be written), newest first. */
  async deadLetters(limit = 100): Promise<Array<{ id?: string; data: WriteBehindJob; failedReason: string; attemptsMade: number; finishedOn?: number }>> {
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
    return `${this.config.keyPrefix}~wb:version:${namespace}:${key}`;
  }

  private pendingKey(namespace: string): string {
    return `${this.config.keyPrefix}~wb:pending:${namespace}`;
  }
}
