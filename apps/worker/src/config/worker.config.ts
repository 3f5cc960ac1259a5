import type { SentinelOptions } from '@cachekit/cache';
import { z } from 'zod';

/** Every setting the worker reads from the environment (`.env.example` lists them). */
export interface WorkerConfig {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** the cache Redis through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME); `redisUrl` is then not used for the cache */
  redisSentinel?: SentinelOptions;
  queueRedisUrl: string;
  cacheKeyPrefix: string;
  concurrency: number;
  cacheAdminToken?: string;
}

export const WORKER_CONFIG = Symbol('worker:config');

const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL');

const schema = z.object({
  WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/postgres'),
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  QUEUE_REDIS_URL: redisUrl.optional(),
  REDIS_SENTINELS: z
    .string()
    .regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, 'must be a comma-separated list of host:port')
    .optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_TLS: z.enum(['0', '1']).default('0'),
  CACHE_KEY_PREFIX: z
    .string()
    .max(64)
    .regex(/^[^*?[\]\\]*$/, 'must not contain Redis glob characters')
    .default('cache:'),
  WRITE_BEHIND_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  CACHE_ADMIN_TOKEN: z.string().optional(),
});

/** Reads and validates the environment once; the error names each bad variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new Error(`Invalid environment: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return {
    port: e.WORKER_PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisSentinel: sentinelFromEnv(e),
    queueRedisUrl: e.QUEUE_REDIS_URL ?? e.REDIS_URL,
    cacheKeyPrefix: e.CACHE_KEY_PREFIX,
    concurrency: e.WRITE_BEHIND_CONCURRENCY,
    cacheAdminToken: e.CACHE_ADMIN_TOKEN,
  };
}

/** ioredis options for BullMQ from a redis:// URL (workers need `maxRetriesPerRequest: null`). */
export function bullConnection(url: string) {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 6379),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** REDIS_SENTINELS (`host:port,...`) with REDIS_SENTINEL_NAME, and the credentials and TLS for it; undefined without REDIS_SENTINELS. */
function sentinelFromEnv(e: {
  REDIS_SENTINELS?: string;
  REDIS_SENTINEL_NAME?: string;
  REDIS_USERNAME?: string;
  REDIS_PASSWORD?: string;
  REDIS_TLS: '0' | '1';
}): SentinelOptions | undefined {
  if (!e.REDIS_SENTINELS) return undefined;
  if (!e.REDIS_SENTINEL_NAME) throw new Error('Invalid environment: REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
  const sentinels = e.REDIS_SENTINELS.split(',').map((entry) => {
    const [host, port] = entry.trim().split(':');
    return { host, port: Number(port) };
  });
  return { sentinels, name: e.REDIS_SENTINEL_NAME, username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD, tls: e.REDIS_TLS === '1' };
}
