import { bounded } from '../bounded.js';
import { primaries, type RedisClient } from '../layers/redis-client.js';

/** The cache Redis INFO figures on `/metrics` and in `stats()`; server-wide (on a cluster: summed over its primaries), not per key prefix. */
export interface RedisInfoFigures {
  keyspace_hits: number;
  keyspace_misses: number;
  used_memory: number;
  evicted_keys: number;
}

const FIGURES = ['keyspace_hits', 'keyspace_misses', 'used_memory', 'evicted_keys'] as const;

/**
 * One INFO (default sections: they hold both `stats` and `memory`, on every Redis version),
 * bounded by `timeoutMs`. Answers `undefined` when Redis fails, is away or is slow: callers
 * leave the figures out rather than fail.
 */
export async function readRedisInfo(redis: RedisClient, timeoutMs = 250): Promise<RedisInfoFigures | undefined> {
  const infos = await bounded(Promise.all(primaries(redis).map((node) => node.info())), timeoutMs, 'INFO').catch(() => undefined);
  return infos === undefined ? undefined : sumFigures(infos.map(parseRedisInfo));
}

export function parseRedisInfo(info: string): RedisInfoFigures | undefined {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const figures = {} as RedisInfoFigures;
  for (const name of FIGURES) {
    const value = Number(fields.get(name));
    if (!Number.isFinite(value)) return undefined;
    figures[name] = value;
  }
  return figures;
}

function sumFigures(each: ReadonlyArray<RedisInfoFigures | undefined>): RedisInfoFigures | undefined {
  if (each.length === 0 || each.some((figures) => figures === undefined)) return undefined;
  const total = { keyspace_hits: 0, keyspace_misses: 0, used_memory: 0, evicted_keys: 0 };
  for (const figures of each as RedisInfoFigures[]) for (const name of FIGURES) total[name] += figures[name];
  return total;
}
