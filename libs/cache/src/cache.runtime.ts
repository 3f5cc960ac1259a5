import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { bounded } from './bounded.js';
import { CACHE_CONFIG } from './cache.constants.js';
import type { CacheConfig } from './cache.options.js';
import { InvalidationBus, type InvalidationMessage } from './invalidation/invalidation-bus.js';
import { RedisKeys } from './keys/redis-keys.js';
import { MemoryLayer } from './layers/memory.layer.js';
import { CircuitBreaker } from './layers/circuit-breaker.js';
import { RedisLayer } from './layers/redis.layer.js';
import { createRedisClient, type RedisClient } from './layers/redis-client.js';
import { RedisLock } from './stampede/redis-lock.js';
import { TwoLevelStore } from './layers/two-level.store.js';
import { CacheMetrics } from './metrics/cache.metrics.js';
import { LoadCoordinator } from './stampede/load-coordinator.js';
import { Registry } from 'prom-client';
import { collectCacheStats, type CacheStats } from './metrics/cache-stats.js';
import type { WriteBehindProducer } from './write-behind/write-behind.port.js';

/** What every namespace of one module shares: the config, the two levels, the loads in flight, the metrics. */
@Injectable()
export class CacheRuntime implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('CacheModule');
  readonly redis: RedisClient;
  readonly keys: RedisKeys;
  readonly store: TwoLevelStore;
  readonly metrics: CacheMetrics;
  readonly loads: LoadCoordinator;
  /** absent with `bus: false` */
  readonly bus?: InvalidationBus;
  /** attached by `WriteBehindModule` (`@cachekit/cache/write-behind`) */
  writeBehind?: WriteBehindProducer;
  private readonly ownsRedis: boolean;
  private tooLargeWarnedAt = 0;

  constructor(@Inject(CACHE_CONFIG) readonly config: CacheConfig) {
    if ('client' in config.redis) {
      this.redis = config.redis.client;
      this.ownsRedis = false;
    } else {
      this.redis = createRedisClient(config);
      this.redis.on('error', () => undefined); // failures are reported by RedisLayer, once per interval
      this.ownsRedis = true;
    }
    const l1 = config.l1 ? new MemoryLayer(config.l1) : undefined;
    this.keys = new RedisKeys(config.keyPrefix);
    // Even without an L1 of its own (a worker), an instance announces its changes to the others.
    if (config.bus) {
      this.bus = new InvalidationBus(this.redis, this.keys.busChannel(), {
        onMessage: (message) => this.applyRemoteInvalidation(message),
        onResubscribed: () => {
          this.store.clearLocal();
          this.loads.inflight.invalidateAll();
        },
      });
    }
    const bus = this.bus;
    const breaker = new CircuitBreaker({ threshold: config.circuitBreaker.threshold, cooldownMs: config.circuitBreaker.cooldown });
    const lock = new RedisLock(this.redis, this.keys, breaker);
    this.store = new TwoLevelStore(
      l1,
      new RedisLayer(this.redis, this.keys, breaker),
      lock,
      config.l1 ? config.l1.maxTtl : 0,
      (message) => (bus ? bus.publish(message) : Promise.resolve()),
      { bytes: config.maxEntrySize, tooLarge: (id, bytes) => this.entryTooLarge(id, bytes) },
    );
    this.metrics = new CacheMetrics(config.metrics.registry ?? new Registry(), () => this.l1Size(), this.redis);
    this.loads = new LoadCoordinator(this.store, lock, this.metrics);
    this.redis.on('ready', () => this.store.retryMissed());
  }

  async onModuleInit(): Promise<void> {
    const connected = this.ownsRedis ? await this.connect() : true;
    // After the connection: a cluster's nodes are known by then (the bus listens on one of them).
    // Redis away: the subscription comes when it answers, start-up does not wait for it.
    await this.bus?.start(this.store.hasLocal, connected ? this.config.connectTimeout : 0);
  }

  /** Whether the owned connection is up within the connect timeout. */
  private async connect(): Promise<boolean> {
    try {
      await bounded(this.redis.connect(), this.config.connectTimeout, 'the cache Redis');
      await this.checkEvictionPolicy();
      return true;
    } catch (error) {
      this.logger.warn(`cache Redis unreachable at start-up (${(error as Error).message}); serving without L2 until it answers`);
      return false;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.store.stop();
    await this.bus?.stop();
    if (!this.ownsRedis) return;
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  private entryTooLarge(id: string, bytes: number): void {
    const namespace = id.slice(0, id.indexOf(':'));
    this.metrics.tooLarge.inc({ namespace });
    const now = Date.now();
    if (now - this.tooLargeWarnedAt < 10_000) return; // one line per interval, the metric counts them all
    this.tooLargeWarnedAt = now;
    this.logger.warn(`not caching ${id}: ${bytes} bytes is over maxEntrySize (${this.config.maxEntrySize}); served uncached`);
  }

  /**
   * An `allkeys-*` policy may evict keys without a TTL (leaderboards, unique counters) and the
   * small keys that protect entries (version floors, tag stamps, hash tombstones): say so once.
   * Managed Redis often refuses CONFIG: then say that it could not be checked.
   */
  private async checkEvictionPolicy(): Promise<void> {
    let policy: string | undefined;
    try {
      const answer = (await this.redis.config('GET', 'maxmemory-policy')) as string[];
      policy = answer[1];
    } catch {
      this.logger.log('could not read the cache Redis maxmemory-policy (CONFIG refused); eviction risks are not checked');
      return;
    }
    if (policy?.startsWith('allkeys-')) {
      this.logger.warn(
        `cache Redis maxmemory-policy is ${policy}: under memory pressure it may evict leaderboards and unique counters ` +
          '(keys without a TTL) and the keys that protect cached entries (version floors, tag stamps); ' +
          'keep them on a Redis with volatile-* or noeviction where that matters',
      );
    }
  }

  attachWriteBehind(producer: WriteBehindProducer): void {
    this.writeBehind = producer;
  }

  l1Size(): { entries: number; bytes: number } {
    return this.store.localSize();
  }

  stats(): Promise<CacheStats> {
    return collectCacheStats(this.metrics, this.l1Size(), this.redis);
  }

  private applyRemoteInvalidation(message: InvalidationMessage): void {
    this.store.applyRemote(message);
    if (message.filled?.length) this.loads.notifyFilled(message.filled);
    if (message.ids?.length) this.loads.inflight.invalidate(message.ids);
    if (message.tags?.length) this.loads.inflight.invalidateTags(message.tags);
    if (message.globs?.length) this.loads.inflight.invalidateAll();
    const changed = [...(message.ids ?? []), ...(message.tags ?? []), ...(message.globs ?? [])];
    const namespaces = changed.map((id) => id.slice(0, id.indexOf(':')).replace(/\\/g, ''));
    for (const namespace of new Set(namespaces)) this.metrics.invalidations.inc({ namespace, source: 'bus' });
  }
}
