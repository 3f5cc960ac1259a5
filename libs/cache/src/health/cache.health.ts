import { bounded } from '../bounded.js';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { CacheRuntime } from '../cache.runtime.js';

export type CacheComponentState = 'up' | 'down';
export type CacheBusState = CacheComponentState | 'off';

/** The detail `CacheHealthIndicator` reports under its key. */
export type CacheHealthDetails = {
  redis: CacheComponentState;
  bus: CacheBusState;
  l1Entries: number;
  l1Bytes: number;
  /** true while Redis or the bus is down: still serving (L1, then the loaders), but impaired */
  degraded: boolean;
  /** what is missing, when degraded */
  message?: string;
};

export interface CacheHealthOptions {
  /** bound on the Redis PING, in ms (default 250) */
  timeoutMs?: number;
}

/**
 * Readiness detail for the cache. A cache is an optimisation, not a dependency: with Redis down
 * the app keeps serving from L1 and its loaders, so this indicator never reports `down`; it
 * reports `up` with `degraded: true` and says which part is missing.
 */
@Injectable()
export class CacheHealthIndicator {
  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(CacheRuntime) private readonly runtime: CacheRuntime,
  ) {}

  async isHealthy<const Key extends string = 'cache'>(key: Key = 'cache' as Key, options: CacheHealthOptions = {}) {
    const redis = (await this.ping(options.timeoutMs ?? 250)) ? 'up' : 'down';
    const { bus } = this.runtime;
    const local = this.runtime.l1Size();
    const busState: CacheBusState = bus ? (bus.up ? 'up' : 'down') : 'off';
    const degraded = redis === 'down' || busState === 'down';
    const details: CacheHealthDetails = {
      redis,
      bus: busState,
      l1Entries: local.entries,
      l1Bytes: local.bytes,
      degraded,
    };
    if (degraded)
      details.message =
        redis === 'down' ? 'Redis unreachable: serving from L1 and the loaders' : 'invalidation bus down: L1 is cleared when it is back';
    return this.health.check(key).up(details);
  }

  private ping(timeoutMs: number): Promise<boolean> {
    return bounded(this.runtime.redis.ping(), timeoutMs, 'PING').then(
      (answer) => answer === 'PONG',
      () => false,
    );
  }
}
