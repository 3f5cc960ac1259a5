import type { Redis } from 'ioredis';

/** The cache Redis INFO figures on `/metrics` and in `stats()`; server-wide, not per key prefix. */
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
export async function readRedisInfo(redis: Redis, timeoutMs = 250): Promise<RedisInfoFigures | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    const text = redis.info().then(
      (info) => info,
      () => undefined,
    );
    const info = await Promise.race([text, timeout]);
    return info === undefined ? undefined : parseRedisInfo(info);
  } finally {
    clearTimeout(timer);
  }
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
