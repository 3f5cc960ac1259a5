import type { CacheModuleOptions } from '@cachekit/cache';
import { cacheRedisFromEnv, cacheRedisVariables, parseEnvironment, redisUrlVariable } from '@cachekit/users-domain';
import { z } from 'zod';

/** Every setting the worker reads from the environment (`.env.example` lists them). */
export interface WorkerConfig {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** the cache Redis: REDIS_CLUSTER_NODES, else REDIS_SENTINELS + REDIS_SENTINEL_NAME, else REDIS_URL */
  cacheRedis: CacheModuleOptions['redis'];
  queueRedisUrl: string;
  cacheKeyPrefix: string;
  concurrency: number;
  cacheAdminToken?: string;
}

export const WORKER_CONFIG = Symbol('worker:config');

const schema = z.object({
  WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/postgres'),
  ...cacheRedisVariables,
  QUEUE_REDIS_URL: redisUrlVariable.optional(),
  // Checked by CacheModule at start-up (length, no glob characters, no braces).
  CACHE_KEY_PREFIX: z.string().default('cache:'),
  WRITE_BEHIND_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  CACHE_ADMIN_TOKEN: z.string().optional(),
});

/** Reads and validates the environment once; the error names each bad variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = parseEnvironment(schema, env);
  return {
    port: e.WORKER_PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    cacheRedis: cacheRedisFromEnv(e),
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
