import type { RedisClient } from '../layers/redis-client.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { readRedisInfo, type RedisInfoFigures } from './redis-info.js';
import type { CacheLayerName } from '../layers/two-level.store.js';

export type InvalidationSource = 'api' | 'tag' | 'pattern' | 'cdc' | 'bus';
export type LoadOutcome = 'success' | 'error';

interface UnreportedHits {
  labels: { namespace: string; layer: CacheLayerName };
  count: number;
}

/** The Redis INFO figures as gauges: gauge name, INFO field, help. */
const REDIS_GAUGES: ReadonlyArray<[name: string, field: keyof RedisInfoFigures, help: string]> = [
  ['redis_keyspace_hits', 'keyspace_hits', 'Cache Redis INFO keyspace_hits (server-wide, since its start)'],
  ['redis_keyspace_misses', 'keyspace_misses', 'Cache Redis INFO keyspace_misses (server-wide, since its start)'],
  ['redis_used_memory_bytes', 'used_memory', 'Cache Redis INFO used_memory'],
  ['redis_evicted_keys', 'evicted_keys', 'Cache Redis INFO evicted_keys (server-wide, since its start)'],
];

/**
 * The cache's Prometheus series (names of DESIGN.md section 4), in the registry the app chose
 * (`metrics.registry`) or in one of the module's own, so that several modules (or test apps) in
 * one process never collide. Labels are namespaces and layers, never keys.
 */
export class CacheMetrics {
  readonly hits: Counter<'namespace' | 'layer'>;
  /** hits since `cache_hits_total` was last read, per layer and namespace (a few entries: namespaces are not keys) */
  private readonly unreportedHits: UnreportedHits[] = [];
  private readonly unreportedL1 = new Map<string, UnreportedHits>();
  private readonly unreportedL2 = new Map<string, UnreportedHits>();
  readonly misses: Counter<'namespace'>;
  readonly staleServed: Counter<'namespace'>;
  readonly loads: Counter<'namespace' | 'outcome'>;
  readonly loadDuration: Histogram<'namespace'>;
  readonly earlyRefreshes: Counter<'namespace'>;
  readonly lockWaits: Counter<'namespace'>;
  readonly invalidations: Counter<'namespace' | 'source'>;
  readonly tooLarge: Counter<'namespace'>;

  constructor(
    readonly registry: Registry,
    l1Size: () => { entries: number; bytes: number },
    redis: RedisClient,
  ) {
    // Read once per scrape: INFO is one round trip for all four gauges.
    let info: Promise<RedisInfoFigures | undefined> | undefined;
    const figures = () => (info ??= readRedisInfo(redis).finally(() => setImmediate(() => (info = undefined))));
    const unreported = this.unreportedHits;
    this.hits = new Counter({
      name: 'cache_hits_total',
      help: 'Reads answered from the cache, by namespace and layer',
      labelNames: ['namespace', 'layer'] as const,
      registers: [registry],
      // Hits are counted in plain numbers on the hot path and handed over when the series is read.
      collect() {
        for (const pending of unreported) {
          if (pending.count === 0) continue;
          this.inc(pending.labels, pending.count);
          pending.count = 0;
        }
      },
    });
    this.misses = new Counter({
      name: 'cache_misses_total',
      help: 'Reads that found no usable entry',
      labelNames: ['namespace'] as const,
      registers: [registry],
    });
    this.staleServed = new Counter({
      name: 'cache_stale_served_total',
      help: 'Stale values served (stale-while-revalidate or fail-safe)',
      labelNames: ['namespace'] as const,
      registers: [registry],
    });
    this.loads = new Counter({
      name: 'cache_loads_total',
      help: 'Loader calls, by outcome',
      labelNames: ['namespace', 'outcome'] as const,
      registers: [registry],
    });
    this.loadDuration = new Histogram({
      name: 'cache_load_duration_seconds',
      help: 'Loader call duration',
      labelNames: ['namespace'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.earlyRefreshes = new Counter({
      name: 'cache_early_refreshes_total',
      help: 'Background refreshes started early by XFetch',
      labelNames: ['namespace'] as const,
      registers: [registry],
    });
    this.lockWaits = new Counter({
      name: 'cache_lock_waits_total',
      help: 'Misses that waited for another process holding the load lock',
      labelNames: ['namespace'] as const,
      registers: [registry],
    });
    this.invalidations = new Counter({
      name: 'cache_invalidations_total',
      help: 'Invalidations, by namespace and source',
      labelNames: ['namespace', 'source'] as const,
      registers: [registry],
    });
    this.tooLarge = new Counter({
      name: 'cache_entries_too_large_total',
      help: 'Values served but not stored because they exceed maxEntrySize',
      labelNames: ['namespace'] as const,
      registers: [registry],
    });
    for (const [name, field, help] of REDIS_GAUGES) new RedisInfoGauge(name, help, registry, async () => (await figures())?.[field]);
    new Gauge({
      name: 'cache_l1_entries',
      help: 'Entries in the in-process L1',
      registers: [registry],
      collect() {
        this.set(l1Size().entries);
      },
    });
    new Gauge({
      name: 'cache_l1_bytes',
      help: 'Approximate bytes held by the in-process L1',
      registers: [registry],
      collect() {
        this.set(l1Size().bytes);
      },
    });
  }

  hit(namespace: string, layer: CacheLayerName): void {
    const byNamespace = layer === 'l1' ? this.unreportedL1 : this.unreportedL2;
    const pending = byNamespace.get(namespace);
    if (pending) pending.count++;
    else {
      const counted = { labels: { namespace, layer }, count: 1 };
      byNamespace.set(namespace, counted);
      this.unreportedHits.push(counted);
    }
  }

  load(namespace: string, outcome: LoadOutcome, seconds: number): void {
    this.loads.inc({ namespace, outcome });
    this.loadDuration.observe({ namespace }, seconds);
  }
}

/** A gauge of one Redis INFO figure, left out of the scrape (no sample) while Redis does not answer. */
class RedisInfoGauge extends Gauge {
  constructor(
    name: string,
    help: string,
    registry: Registry,
    private readonly read: () => Promise<number | undefined>,
  ) {
    super({ name, help, registers: [registry] });
  }

  override async get() {
    const value = await this.read();
    if (value !== undefined) this.set(value);
    const metric = await super.get();
    return value === undefined ? { ...metric, values: [] } : metric;
  }
}
