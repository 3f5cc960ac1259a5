import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

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
  up = false;

  constructor(
    private readonly publisher: Redis,
    private readonly channel: string,
    private readonly handlers: {
      /** a message from another instance */
      onMessage: (message: InvalidationMessage) => void;
      /** messages may have been missed (the subscription dropped, or came back after a gap) */
      onResubscribed: () => void;
    },
  ) {}

  /** Subscribes (an instance without L1 only publishes) and keeps the subscription alive. */
  async start(subscribe: boolean): Promise<void> {
    if (!subscribe) return;
    const subscriber = this.publisher.duplicate({
      connectionName: `cachekit-bus-${this.instanceId}`,
      lazyConnect: true,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
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
    subscriber.subscribe(this.channel).catch((error: Error) => this.logger.warn(`bus subscribe failed: ${error.message}`));
  }

  async publish(message: InvalidationMessage): Promise<void> {
    try {
      await this.publisher.publish(this.channel, JSON.stringify({ from: this.instanceId, ...message }));
    } catch {
      // Redis is away: the other instances clear their L1 when their own bus reconnects.
    }
  }

  async stop(): Promise<void> {
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
