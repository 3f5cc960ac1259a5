import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type pg from 'pg';
import { Counter, Gauge } from 'prom-client';
import { z } from 'zod';
import { CacheRuntime } from '../../cache.runtime.js';
import { CacheService } from '../../cache.service.js';
import { toMilliseconds } from '../../duration.js';
import { CACHE_CDC_OPTIONS } from './cache-cdc.module-definition.js';
import type { CacheCdcOptions, CdcInvalidation, CdcNotification } from './cache-cdc.options.js';

const notificationSchema = z.object({
  table: z.string(),
  op: z.enum(['INSERT', 'UPDATE', 'DELETE']),
  id: z.union([z.string(), z.number()]),
  version: z.number().optional(),
  ts: z.number().optional(),
});

/**
 * CDC invalidation: LISTENs on a dedicated PostgreSQL connection and evicts what the map derives
 * from each NOTIFY. Reconnects with backoff, and resyncs after every reconnect, because NOTIFY
 * has no replay. A NOTIFY of a transaction that rolled back is never delivered by PostgreSQL.
 */
@Injectable()
export class PgNotifyListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PgNotifyListener');
  private readonly channel: string;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private client?: pg.Client;
  private stopped = false;
  private connectedOnce = false;
  private failures = 0;
  private reconnectTimer?: NodeJS.Timeout;
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
    this.channel = options.channel ?? 'cache_invalidation';
    this.minDelayMs = toMilliseconds(options.reconnect?.minDelay ?? 100, 'reconnect.minDelay');
    this.maxDelayMs = toMilliseconds(options.reconnect?.maxDelay ?? 5_000, 'reconnect.maxDelay');
    const registers = [runtime.metrics.registry];
    this.notifications = new Counter({ name: 'cdc_notifications_total', help: 'NOTIFY messages received', registers });
    this.lag = new Gauge({ name: 'cdc_lag_seconds', help: 'From the row change to its eviction, last notification', registers });
    this.listenerUp = new Gauge({ name: 'cdc_listener_up', help: '1 while the LISTEN connection is up', registers });
    this.resyncs = new Counter({ name: 'cdc_resyncs_total', help: 'Resyncs after a (re)connection', registers });
  }

  onApplicationBootstrap(): void {
    this.connectSafely();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.setUp(false);
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // `pg` is an optional peer dependency: only apps that use CDC load it.
    const { default: postgres } = await import('pg');
    const client = new postgres.Client({
      connectionString: this.options.connectionString,
      application_name: 'cachekit-cdc',
      keepAlive: true,
    });
    this.client = client;
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost || this.stopped) return;
      lost = true;
      this.setUp(false);
      this.logger.warn(`LISTEN connection lost${error ? `: ${error.message}` : ''}; reconnecting`);
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) =>
      this.receive(message.payload).catch((error: Error) => this.logger.warn(`CDC notification not applied: ${error.message}`)),
    );
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
    } catch (error) {
      onLost(error as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.failures = 0;
    this.setUp(true);
    // After LISTEN: changes from now on arrive as notifications; those made before are covered here.
    if (this.connectedOnce || this.options.resyncOnStart) await this.resync();
    this.connectedOnce = true;
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** this.failures++);
    this.reconnectTimer = setTimeout(() => this.connectSafely(), delay * (0.5 + Math.random() / 2));
  }

  /** A failure anywhere in connecting (or in a resync's map code) means: try again later, never crash. */
  private connectSafely(): void {
    this.connect().catch((error: Error) => {
      this.logger.warn(`CDC listener failed: ${error.message}`);
      this.setUp(false);
      this.client?.end().catch(() => undefined);
      this.scheduleReconnect();
    });
  }

  private async receive(payload: string | undefined): Promise<void> {
    let notification: CdcNotification;
    try {
      notification = notificationSchema.parse(JSON.parse(payload ?? ''));
    } catch {
      this.logger.warn(`ignored a notification that is not {table, op, id}: ${String(payload).slice(0, 200)}`);
      return;
    }
    this.notifications.inc();
    await this.apply(this.options.map(notification));
    if (notification.ts !== undefined) this.lag.set(Math.max(0, Date.now() / 1000 - notification.ts));
  }

  private async resync(): Promise<void> {
    this.logger.log('resyncing: evicting everything the CDC map covers');
    await this.apply(this.options.resync());
    this.resyncs.inc();
  }

  private async apply(invalidations: CdcInvalidation | readonly CdcInvalidation[] | undefined): Promise<void> {
    const list: readonly CdcInvalidation[] =
      invalidations === undefined ? [] : Array.isArray(invalidations) ? invalidations : [invalidations as CdcInvalidation];
    for (const { namespace, ...what } of list) {
      try {
        await this.cache.namespace(namespace).invalidate(what, 'cdc');
      } catch (error) {
        this.logger.warn(`CDC eviction in ${namespace} failed: ${(error as Error).message}`);
      }
    }
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.listenerUp.set(up ? 1 : 0);
  }
}
