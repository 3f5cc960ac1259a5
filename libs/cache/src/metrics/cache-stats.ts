import type { RedisClient } from '../layers/redis-client.js';
import type { Counter } from 'prom-client';
import type { CacheMetrics } from './cache.metrics.js';
import { readRedisInfo } from './redis-info.js';

/** Lookups and ratios of one namespace (or of all), from the cache's counters since start-up. */
export interface LookupStats {
  hits: { l1: number; l2: number };
  misses: number;
  stale: number;
  /** hits + misses + stale answers */
  lookups: number;
  /** (l1 + l2 hits) / lookups; null before the first lookup */
  hitRatio: number | null;
  layers: {
    /** L1 hits / lookups: every lookup reads L1 first */
    l1: { hitRatio: number | null };
    /** L2 hits / lookups that reached L2 (those L1 did not answer) */
    l2: { hitRatio: number | null };
  };
}

export interface CacheStats {
  namespaces: Record<string, LookupStats>;
  total: LookupStats;
  l1: { entries: number; bytes: number };
  /** the cache Redis INFO figures (server-wide); null each when Redis does not answer */
  redis: {
    available: boolean;
    keyspace_hits: number | null;
    keyspace_misses: number | null;
    used_memory: number | null;
    evicted_keys: number | null;
  };
}

interface Tally {
  l1: number;
  l2: number;
  misses: number;
  stale: number;
}

/** What `cache.stats()` answers (and `GET /cache/stats` shows), from the cache's own counters since start-up. */
export async function collectCacheStats(
  metrics: CacheMetrics,
  l1: { entries: number; bytes: number },
  redis: RedisClient,
): Promise<CacheStats> {
  const tallies = new Map<string, Tally>();
  const tally = (namespace: string): Tally => {
    let found = tallies.get(namespace);
    if (!found) tallies.set(namespace, (found = { l1: 0, l2: 0, misses: 0, stale: 0 }));
    return found;
  };
  for (const { labels, value } of await valuesOf(metrics.hits))
    tally(String(labels.namespace))[labels.layer === 'l2' ? 'l2' : 'l1'] += value;
  for (const { labels, value } of await valuesOf(metrics.misses)) tally(String(labels.namespace)).misses += value;
  for (const { labels, value } of await valuesOf(metrics.staleServed)) tally(String(labels.namespace)).stale += value;

  const total: Tally = { l1: 0, l2: 0, misses: 0, stale: 0 };
  const namespaces: Record<string, LookupStats> = {};
  for (const [namespace, counts] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    namespaces[namespace] = lookupStats(counts);
    for (const field of ['l1', 'l2', 'misses', 'stale'] as const) total[field] += counts[field];
  }
  const info = await readRedisInfo(redis);
  return {
    namespaces,
    total: lookupStats(total),
    l1,
    redis: {
      available: info !== undefined,
      keyspace_hits: info?.keyspace_hits ?? null,
      keyspace_misses: info?.keyspace_misses ?? null,
      used_memory: info?.used_memory ?? null,
      evicted_keys: info?.evicted_keys ?? null,
    },
  };
}

async function valuesOf(counter: Counter<string>) {
  return (await counter.get()).values;
}

function lookupStats({ l1, l2, misses, stale }: Tally): LookupStats {
  const lookups = l1 + l2 + misses + stale;
  return {
    hits: { l1, l2 },
    misses,
    stale,
    lookups,
    hitRatio: ratio(l1 + l2, lookups),
    layers: { l1: { hitRatio: ratio(l1, lookups) }, l2: { hitRatio: ratio(l2, lookups - l1) } },
  };
}

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null;
}
