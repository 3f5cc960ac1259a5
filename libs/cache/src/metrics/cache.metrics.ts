import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheLayerName } from '../layers/two-level.store.js';

export type InvalidationSource = 'api' | 'tag' | 'pattern' | 'cdc' | 'bus';
export type LoadOutcome = 'success' | 'error';

/**
 * The cache's Prometheus series (names of DESIGN.md section 4), in a registry of its own so that
 * several modules (or test apps) in one process never collide; apps merge it into their `/metrics`.
 * Labels are namespaces and layers, never keys.
 */
export class CacheMetrics {
  readonly registry = new Registry();

  readonly hits = new Counter({
    name: 'cache_hits_total',
    help: 'Reads answered from the cache, by namespace and layer',
    labelNames: ['namespace', 'layer'] as const,
    registers: [this.registry],
  });

  readonly misses = new Counter({
    name: 'cache_misses_total',
    help: 'Reads that found no usable entry',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly staleServed = new Counter({
    name: 'cache_stale_served_total',
    help: 'Stale values served (stale-while-revalidate or fail-safe)',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly loads = new Counter({
    name: 'cache_loads_total',
    help: 'Loader calls, by outcome',
    labelNames: ['namespace', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly loadDuration = new Histogram({
    name: 'cache_load_duration_seconds',
    help: 'Loader call duration',
    labelNames: ['namespace'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly earlyRefreshes = new Counter({
    name: 'cache_early_refreshes_total',
    help: 'Background refreshes started early by XFetch',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly lockWaits = new Counter({
    name: 'cache_lock_waits_total',
    help: 'Misses that waited for another process holding the load lock',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  });

  readonly invalidations = new Counter({
    name: 'cache_invalidations_total',
    help: 'Invalidations, by namespace and source',
    labelNames: ['namespace', 'source'] as const,
    registers: [this.registry],
  });

  constructor(l1Size: () => { entries: number; bytes: number }) {
    const registry = this.registry;
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
    this.hits.inc({ namespace, layer });
  }

  load(namespace: string, outcome: LoadOutcome, seconds: number): void {
    this.loads.inc({ namespace, outcome });
    this.loadDuration.observe({ namespace }, seconds);
  }
}
