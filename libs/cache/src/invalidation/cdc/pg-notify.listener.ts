import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { bounded } from '../../bounded.js';
import { CacheUnavailableError } from '../../cache.errors.js';
import { CacheRuntime } from '../../cache.runtime.js';
import { CacheService } from '../../cache.service.js';
import { type Duration, toMilliseconds } from '../../duration.js';
import { CACHE_CDC_OPTIONS } from './cache-cdc.module-definition.js';
import { type CacheCdcOptions, cdcSettingsSchema, type CdcInvalidation, type CdcNotification } from './cache-cdc.options.js';
import { parseOptions } from '../../option-schemas.js';
import { InvalidationBatch } from './invalidation-batch.js';

const notificationSchema = z.object({
  table: z.string(),
  op: z.enum(['INSERT', 'UPDATE', 'DELETE']),
  id: z.union([z.string(), z.number()]),
  version: z.number().optional(),
  ts: z.number().optional(),
});

/** TCP keepalive idle delay of the LISTEN connection (the OS default is two hours). */
const KEEPALIVE_IDLE_MS = 10_000;
/** How often the listener logs what it did (counts, never a line per notification). */
const SUMMARY_INTERVAL_MS = 10_000;

/** One LISTEN connection and its heartbeat. */
interface ListenConnection {
  client: pg.Client;
  heartbeat?: NodeJS.Timeout;
  lost: boolean;
}

/** What happened since the last summary line. */
interface Tally {
  received: number;
  applied: number;
  batches: number;
  calls: number;
  ignored: number;
  failed: number;
  dropped: number;
  lastProblem?: string;
}

const emptyTally = (): Tally => ({ received: 0, applied: 0, batches: 0, calls: 0, ignored: 0, failed: 0, dropped: 0 });

/** Notifications queued and resyncs asked (or, of them, done) since start-up. */
interface Progress {
  notifications: number;
  resyncs: number;
}

/** A `caughtUp()` call: `until` is set when its NOTIFY arrives (what was asked before it); it resolves once that is done. */
interface Barrier {
  until?: Progress;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * CDC invalidation: LISTENs on a dedicated PostgreSQL connection and evicts what the map derives
 * from each NOTIFY. Notifications are queued and applied in coalesced batches, one batch at a
 * time, so that a statement touching many rows costs a few Redis commands, not one per row.
 * A heartbeat checks the connection; on a lost or silent one it reconnects with backoff and
 * resyncs, because NOTIFY has no replay. A NOTIFY of a transaction that rolled back is never
 * delivered by PostgreSQL.
 */
@Injectable()
export class PgNotifyListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PgNotifyListener');
  private readonly settings: z.output<typeof cdcSettingsSchema>;
  private connection?: ListenConnection;
  private stopped = false;
  private connectedOnce = false;
  private failures = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private summaryTimer?: NodeJS.Timeout;
  /** received and not applied yet, oldest first */
  private queue: CdcNotification[] = [];
  private resyncWanted = false;
  private draining?: Promise<void>;
  /** since start-up: notifications queued; of them, applied (or covered by a resync); resyncs asked; of them, done */
  private readonly asked: Progress = { notifications: 0, resyncs: 0 };
  private readonly done: Progress = { notifications: 0, resyncs: 0 };
  /** notifications dropped for a resync, counted as done once it ran */
  private coveredByResync = 0;
  private readonly barriers = new Map<string, Barrier>();
  /** LISTENed beside the CDC channel, for this process's `caughtUp()` alone: no other listener sees its NOTIFYs */
  private readonly barrierChannel = `cachekit_barrier_${randomBytes(8).toString('hex')}`;
  private tally = emptyTally();
  private readonly notifications: Counter;
  private readonly lag: Gauge;
  private readonly listenerUp: Gauge;
  private readonly resyncs: Counter;
  up = false;

  constructor(
    @Inject(CACHE_CDC_OPTIONS) private readonly options: CacheCdcOptions,
    private readonly cache: CacheService,
    runtime: CacheRuntime,
  ) {
    this.settings = parseOptions(cdcSettingsSchema, options, 'CacheCdcModule');
    const registers = [runtime.metrics.registry];
    this.notifications = new Counter({ name: 'cdc_notifications_total', help: 'NOTIFY messages received', registers });
    this.lag = new Gauge({
      name: 'cdc_lag_seconds',
      help: 'From the row change to its eviction, for the last notification applied (includes time queued)',
      registers,
    });
    this.listenerUp = new Gauge({ name: 'cdc_listener_up', help: '1 while the LISTEN connection is up', registers });
    this.resyncs = new Counter({ name: 'cdc_resyncs_total', help: 'Resyncs after a (re)connection or a dropped backlog', registers });
  }

  onApplicationBootstrap(): void {
    this.summaryTimer = setInterval(() => this.summarize(), SUMMARY_INTERVAL_MS).unref();
    this.connectSafely();
  }

  /**
   * Resolves once every change committed before the call has been evicted here: a NOTIFY on this
   * process's own channel comes back behind them (PostgreSQL delivers the notifications of every
   * channel in commit order), and once it is back, the notifications queued before it and any resync asked before it have run.
   * For a service that must not read its own out-of-band change from the cache (a migration, a
   * script, a test). Rejects at once while the LISTEN connection is down, if it is lost meanwhile,
   * or after `timeout` (default 10 s); a resync then still follows the reconnection.
   */
  async caughtUp(timeout: Duration = '10s'): Promise<void> {
    const ms = toMilliseconds(timeout, 'timeout');
    const connection = this.connection;
    if (!this.up || !connection) throw unavailable('the LISTEN connection is down: CDC cannot catch up now');
    const id = randomUUID();
    const done = new Promise<void>((resolve, reject) => this.barriers.set(id, { resolve, reject }));
    try {
      const notify = connection.client.query('SELECT pg_notify($1, $2)', [this.barrierChannel, id]);
      await bounded(Promise.all([notify, done]), ms, () => unavailable(`CDC did not catch up within ${ms} ms`));
    } finally {
      this.barriers.delete(id);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.failBarriers('the application is shutting down');
    clearTimeout(this.reconnectTimer);
    clearInterval(this.summaryTimer);
    const connection = this.connection;
    this.connection = undefined;
    this.setUp(false);
    if (connection) {
      connection.lost = true;
      clearInterval(connection.heartbeat);
      const { client } = connection;
      await bounded(client.end(), this.settings.connectTimeout, 'closing the LISTEN connection').catch(() =>
        client.connection.stream.destroy(),
      );
    }
    await this.draining;
  }

  // CONNECTION: one dedicated client, bounded connect and LISTEN, a heartbeat while it is up.
  private async connect(): Promise<void> {
    if (this.stopped) return;
    // `pg` is an optional peer dependency: only apps that use CDC load it.
    const { default: postgres } = await import('pg');
    const client = new postgres.Client({
      connectionString: this.options.connectionString,
      application_name: 'cachekit-cdc',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      connectionTimeoutMillis: this.settings.connectTimeout,
    });
    const connection: ListenConnection = { client, lost: false };
    this.connection = connection;
    client.on('error', (error: Error) => this.lose(connection, error.message));
    client.on('notification', ({ channel, payload }) =>
      channel === this.barrierChannel ? this.barrierArrived(payload ?? '') : this.receive(payload),
    );
    try {
      await client.connect();
      const listen = [this.settings.channel, this.barrierChannel].map((channel) => `LISTEN ${client.escapeIdentifier(channel)}`);
      await bounded(client.query(listen.join('; ')), this.settings.connectTimeout, 'LISTEN');
    } catch (error) {
      this.lose(connection, (error as Error).message);
      return;
    }
    // Only now: while connecting, the failure itself (a timeout, a refusal) is the better reason.
    client.on('end', () => this.lose(connection, 'the connection ended'));
    if (connection.lost || this.stopped) return;
    this.failures = 0;
    this.setUp(true);
    connection.heartbeat = this.startHeartbeat(connection);
    // After LISTEN: changes from now on arrive as notifications; those made before are covered here.
    if (this.connectedOnce || this.settings.resyncOnStart) this.requestResync();
    this.connectedOnce = true;
  }

  /** A bounded round trip on the connection itself: the only way to notice a path that went silent. */
  private startHeartbeat(connection: ListenConnection): NodeJS.Timeout {
    let beating = false;
    return setInterval(() => {
      if (beating || connection.lost) return;
      beating = true;
      bounded(connection.client.query('SELECT 1'), this.settings.heartbeat.timeout, 'heartbeat').then(
        () => (beating = false),
        (error: Error) => this.lose(connection, error.message),
      );
    }, this.settings.heartbeat.interval).unref();
  }

  /** The connection is gone or useless: mark the listener down, destroy it, reconnect (and resync). */
  private lose(connection: ListenConnection, reason?: string): void {
    if (connection.lost) return;
    connection.lost = true;
    clearInterval(connection.heartbeat);
    // Destroyed, not ended: on a silent path a graceful end would wait for an answer forever.
    connection.client.connection.stream.destroy();
    if (this.connection !== connection || this.stopped) return;
    this.connection = undefined;
    this.setUp(false);
    this.failBarriers(`the LISTEN connection was lost${reason ? `: ${reason}` : ''}`);
    this.logger.warn(`LISTEN connection lost${reason ? `: ${reason}` : ''}; reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const delay = Math.min(this.settings.reconnect.maxDelay, this.settings.reconnect.minDelay * 2 ** this.failures++);
    this.reconnectTimer = setTimeout(() => this.connectSafely(), delay * (0.5 + Math.random() / 2));
  }

  /** A failure anywhere in connecting means: try again later, never crash. */
  private connectSafely(): void {
    this.connect().catch((error: Error) => {
      this.logger.warn(`CDC listener failed: ${error.message}`);
      this.setUp(false);
      if (this.connection) this.lose(this.connection, error.message);
      else this.scheduleReconnect();
    });
  }

  // QUEUE: every notification is queued at once; one batch at a time is applied.
  private receive(payload: string | undefined): void {
    let notification: CdcNotification;
    try {
      notification = notificationSchema.parse(JSON.parse(payload ?? ''));
    } catch {
      this.tally.ignored++;
      this.tally.lastProblem = `ignored a notification that is not {table, op, id}: ${String(payload).slice(0, 200)}`;
      return;
    }
    this.notifications.inc();
    this.tally.received++;
    if (this.queue.length >= this.settings.batch.maxQueued) {
      // Too far behind to catch up one change at a time: evicting everything the map covers is always safe.
      this.logger.warn(`more than ${this.settings.batch.maxQueued} CDC notifications waiting: dropped them, resyncing instead`);
      this.tally.dropped += this.queue.length;
      this.coveredByResync += this.queue.length;
      this.queue = [];
      this.asked.resyncs++;
      this.resyncWanted = true;
    }
    this.asked.notifications++;
    this.queue.push(notification);
    this.kick();
  }

  private requestResync(): void {
    this.asked.resyncs++;
    this.resyncWanted = true;
    this.kick();
  }

  // BARRIERS: `caughtUp()` resolves once what was asked before its NOTIFY arrived is done.
  private barrierArrived(id: string): void {
    const barrier = this.barriers.get(id);
    if (!barrier) return; // one that timed out
    barrier.until = { ...this.asked };
    this.wakeBarriers();
  }

  private wakeBarriers(): void {
    for (const [id, { until, resolve }] of this.barriers) {
      if (!until || this.done.notifications < until.notifications || this.done.resyncs < until.resyncs) continue;
      this.barriers.delete(id);
      resolve();
    }
  }

  private failBarriers(reason: string): void {
    for (const barrier of this.barriers.values()) barrier.reject(unavailable(reason));
    this.barriers.clear();
  }

  /** Starts draining unless it runs; on the next turn, so that one socket read's notifications share a batch. */
  private kick(): void {
    if (this.draining || this.stopped) return;
    this.draining = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drain())
      .finally(() => {
        this.draining = undefined;
        if (this.queue.length || this.resyncWanted) this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      if (this.resyncWanted) {
        this.resyncWanted = false;
        const [asked, covered] = [this.asked.resyncs, this.coveredByResync];
        if (await this.resync()) {
          this.done.resyncs = asked;
          this.done.notifications += covered;
          this.coveredByResync -= covered;
          this.wakeBarriers();
        }
      } else if (this.queue.length) {
        await this.applyBatch(this.queue.splice(0, this.settings.batch.size));
      } else {
        return;
      }
    }
  }

  // BATCH: map each notification, coalesce per namespace, one invalidate() per namespace.
  private async applyBatch(batch: readonly CdcNotification[]): Promise<void> {
    const coalesced = new InvalidationBatch();
    for (const notification of batch) {
      try {
        for (const invalidation of asList(this.options.map(notification))) coalesced.add(invalidation);
      } catch (error) {
        this.problem(`the CDC map failed on ${notification.table} ${notification.id}: ${(error as Error).message}`);
      }
    }
    await this.invalidate(coalesced);
    this.tally.applied += batch.length;
    this.tally.batches++;
    this.done.notifications += batch.length;
    this.wakeBarriers();
    const last = batch.findLast((notification) => notification.ts !== undefined);
    if (last?.ts !== undefined) this.lag.set(Math.max(0, Date.now() / 1000 - last.ts));
  }

  /** Whether the resync ran (its evictions were attempted). */
  private async resync(): Promise<boolean> {
    this.logger.log('resyncing: evicting everything the CDC map covers');
    const coalesced = new InvalidationBatch();
    try {
      for (const invalidation of asList(this.options.resync())) coalesced.add(invalidation);
    } catch (error) {
      // Try again after a reconnect (with backoff), which resyncs.
      this.logger.warn(`CDC resync failed: ${(error as Error).message}`);
      if (this.connection) this.lose(this.connection, 'the resync failed');
      return false;
    }
    await this.invalidate(coalesced);
    this.resyncs.inc();
    return true;
  }

  private async invalidate(coalesced: InvalidationBatch): Promise<void> {
    for (const [namespace, what] of coalesced.calls()) {
      this.tally.calls++;
      try {
        await this.cache.namespace(namespace).invalidate(what, 'cdc');
      } catch (error) {
        this.problem(`CDC eviction in ${namespace} failed: ${(error as Error).message}`);
      }
    }
  }

  private problem(message: string): void {
    this.tally.failed++;
    this.tally.lastProblem = message;
  }

  private summarize(): void {
    const t = this.tally;
    this.tally = emptyTally();
    if (!t.received && !t.ignored && !t.failed && !t.dropped) return;
    const parts = [`${t.received} notifications received, ${t.applied} applied in ${t.batches} batches (${t.calls} invalidate calls)`];
    if (this.queue.length) parts.push(`${this.queue.length} queued`);
    if (t.ignored) parts.push(`${t.ignored} ignored`);
    if (t.failed) parts.push(`${t.failed} failed`);
    if (t.dropped) parts.push(`${t.dropped} dropped for a resync`);
    const text = `CDC, last ${SUMMARY_INTERVAL_MS / 1000} s: ${parts.join(', ')}`;
    if (t.lastProblem) this.logger.warn(`${text}; last problem: ${t.lastProblem}`);
    else this.logger.log(text);
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.listenerUp.set(up ? 1 : 0);
  }
}

function unavailable(message: string): CacheUnavailableError {
  return new CacheUnavailableError('CACHE_CDC_UNAVAILABLE', message);
}

function asList(invalidations: CdcInvalidation | readonly CdcInvalidation[] | undefined): readonly CdcInvalidation[] {
  if (invalidations === undefined) return [];
  return Array.isArray(invalidations) ? invalidations : [invalidations as CdcInvalidation];
}
