import { Inject, Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CacheRuntime } from '@cachekit/cache';
import { readRedisInfo, type RedisInfoFigures } from '../common/redis-info.js';

/** The Redis INFO figures on `/metrics`: gauge name, INFO field, help. */
const REDIS_GAUGES: ReadonlyArray<[name: string, field: keyof RedisInfoFigures, help: string]> = [
  ['redis_keyspace_hits', 'keyspace_hits', 'Cache Redis INFO keyspace_hits (server-wide, since its start)'],
  ['redis_keyspace_misses', 'keyspace_misses', 'Cache Redis INFO keyspace_misses (server-wide, since its start)'],
  ['redis_used_memory_bytes', 'used_memory', 'Cache Redis INFO used_memory'],
  ['redis_evicted_keys', 'evicted_keys', 'Cache Redis INFO evicted_keys (server-wide, since its start)'],
];

export interface MetricsScrape {
  contentType: string;
  body: string;
}

/**
 * What `/metrics` serves: the process metrics of this app (a registry of its own, not prom-client's
 * global one, so that several apps in one process never collide), the cache's registry, and the
 * cache Redis INFO figures read on each scrape (left out when Redis does not answer).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  constructor(@Inject(CacheRuntime) private readonly cache: CacheRuntime) {
    collectDefaultMetrics({ register: this.registry });
  }

  async scrape(): Promise<MetricsScrape> {
    const registries = [this.registry, this.cache.metrics.registry];
    const info = await readRedisInfo(this.cache.redis);
    if (info) registries.push(redisInfoRegistry(info));
    const merged = Registry.merge(registries);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}

function redisInfoRegistry(info: RedisInfoFigures): Registry {
  const registry = new Registry();
  for (const [name, field, help] of REDIS_GAUGES) new Gauge({ name, help, registers: [registry] }).set(info[field]);
  return registry;
}
