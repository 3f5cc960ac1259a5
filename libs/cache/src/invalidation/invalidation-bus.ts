import { Logger } from '@nestjs/common';
import { type Cluster, Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { bounded } from '../bounded.js';
import type { RedisClient } from '../layers/redis-client.js';

/**
 * What one instance tells the others: ids, tags and id globs that changed (drop them from L1,
 * and a load of them still running must not land), and ids a load just filled in L2 (only
 * drop the older L1 copy, and wake whoever waits for that load). Never values.
 */
export interface InvalidationMessage {
  ids?: string[];
  tags?: string[];
  globs?: string[];
  filled?: string[];
}

const wireMessage = z.object({
  from: z.string(),
  ids: z.array(z.string()).optional(),
  tags: z.array(z.string()).optional(),
  globs: z.array(z.string()).optional(),
  filled: z.array(z.string()).optional(),
});

const RESUBSCRIBE_GAP_MS = 100;

/** A subscriber waits for Redis rather than failing its SUBSCRIBE. */
const SUBSCRIBER_OPTIONS = { lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null };

/**
 * Keeps every instance's L1 coherent over Redis pub/sub. A message lost while the subscriber was
 * disconnected is covered by clearing L1 on every reconnect; one lost otherwise is bounded by
 * the L1 TTL cap (`l1.maxTtl`).
 */
export class InvalidationBus {
  readonly instanceId = randomBytes(8).toString('hex');
  private readonly logger = new Logger('CacheBus');
  private subscriber?: Redis;
  private connectedBefore = false;
  private stopped = false;
  private markSubscribed!: () => void;
  /** resolved by the first SUBSCRIBE that Redis confirms */
  private readonly subscribed = new Promise<void>((resolve) => (this.markSubscribed = resolve));
  up = false;

  constructor(
    private readonly publisher: RedisClient,
    private readonly channel: string,
    private readonly handlers: {
      /** a message from another instance */
      onMessage: (message: InvalidationMessage) => void;
      /** messages may have been missed (the subscription dropped, or came back after a gap) */
      onResubscribed: () => void;
    },
  ) {}

  /**
   * Subscribes (an instance without L1 only publishes) and keeps the subscription alive. Resolves
   * once subscribed, or after `waitMs` (Redis away: the subscription comes when it answers).
   */
  async start(subscribe: boolean, waitMs = 2_000): Promise<void> {
    if (!subscribe) return;
    this.stopped = false;
    if (this.publisher.isCluster) this.subscribeToClusterNode(this.publisher as Cluster);
    else
      this.subscribeWith(
        (this.publisher as Redis).duplicate({
          ...SUBSCRIBER_OPTIONS,
          connectionName: `cachekit-bus-${this.instanceId}`,
          retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
        }),
      );
    await bounded(this.subscribed, waitMs, 'SUBSCRIBE').catch(() => undefined);
  }

  /**
   * On a cluster a message published on any node reaches every node, so the bus listens on one of
   * them; when that node goes (killed, failed over), it listens on another, and L1 is cleared as
   * after any gap.
   */
  private subscribeToClusterNode(cluster: Cluster): void {
    if (this.stopped) return;
    const nodes = cluster.nodes('all');
    if (nodes.length === 0) {
      // Not connected yet (or every node gone): try again once the cluster is (back) up.
      cluster.once('ready', () => this.subscribeToClusterNode(cluster));
      return;
    }
    const node = nodes[Math.floor(Math.random() * nodes.length)];
    const subscriber = new Redis({
      ...cluster.options.redisOptions,
      ...SUBSCRIBER_OPTIONS,
      host: node.options.host,
      port: node.options.port,
      connectionName: `cachekit-bus-${this.instanceId}`,
      retryStrategy: () => null, // another node instead, below
    });
    subscriber.once('end', () => setTimeout(() => this.subscribeToClusterNode(cluster), RESUBSCRIBE_GAP_MS).unref());
    this.subscribeWith(subscriber);
  }

  private subscribeWith(subscriber: Redis): void {
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // reconnects on its own; state shows in `up`
    subscriber.on('close', () => {
      // L1 keeps serving meanwhile (Redis may be down): entries age out within l1.maxTtl, and
      // L1 is cleared when the bus is back.
      if (this.up) this.logger.warn('invalidation bus disconnected; L1 is cleared when it is back');
      this.up = false;
    });
    subscriber.on('ready', () => {
      this.up = true;
      if (this.connectedBefore) {
        this.handlers.onResubscribed();
        // ioredis subscribes again just after 'ready': clear once more past that short gap.
        setTimeout(() => this.handlers.onResubscribed(), RESUBSCRIBE_GAP_MS).unref();
      }
      this.connectedBefore = true;
    });
    subscriber.on('message', (_channel: string, text: string) => this.receive(text));
    // ioredis re-subscribes on reconnect by itself.
    subscriber.subscribe(this.channel).then(
      () => this.markSubscribed(),
      (error: Error) => this.logger.warn(`bus subscribe failed: ${error.message}`),
    );
  }

  async publish(message: InvalidationMessage): Promise<void> {
    try {
      await this.publisher.publish(this.channel, JSON.stringify({ from: this.instanceId, ...message }));
    } catch {
      // Redis is away: the other instances clear their L1 when their own bus reconnects.
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.up = false;
    if (!subscriber) return;
    if (subscriber.status === 'ready') await subscriber.quit().catch(() => subscriber.disconnect());
    else subscriber.disconnect();
  }

  private receive(text: string): void {
    let parsed: z.infer<typeof wireMessage>;
    try {
      parsed = wireMessage.parse(JSON.parse(text));
    } catch {
      return; // not ours
    }
    if (parsed.from === this.instanceId) return;
    try {
      this.handlers.onMessage({ ids: parsed.ids, tags: parsed.tags, globs: parsed.globs, filled: parsed.filled });
    } catch (error) {
      // Thrown inside an ioredis listener it would crash the process; L1 is cleared instead.
      this.logger.warn(`invalidation message not applied, clearing L1: ${(error as Error).message}`);
      this.handlers.onResubscribed();
    }
  }
}
