import { type SentinelOptions, toMilliseconds } from '@cachekit/cache';
import { z } from 'zod';

/** Every setting users-api reads from the environment (`.env.example` lists them with their defaults). */
export interface AppConfig {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** the cache Redis through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME); `redisUrl` is then not used for the cache */
  redisSentinel?: SentinelOptions;
  /** BullMQ's Redis (write-behind); REDIS_URL when unset */
  queueRedisUrl: string;
  cacheKeyPrefix: string;
  cacheDefaultTtlMs: number;
  usersCacheTtlMs: number;
  cacheL1MaxItems: number;
  cacheL1MaxBytes: number;
  usersReadDelayMs: number;
  cacheAdminToken?: string;
}

export const APP_CONFIG = Symbol('users-api:config');

const duration = (name: string) =>
  z.string().transform((value, ctx) => {
    try {
      return toMilliseconds(value, name);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/postgres'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .default('redis://127.0.0.1:6379'),
  QUEUE_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional(),
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
  CACHE_DEFAULT_TTL: duration('CACHE_DEFAULT_TTL').default(60_000),
  USERS_CACHE_TTL: duration('USERS_CACHE_TTL').default(300_000),
  CACHE_L1_MAX_ITEMS: positiveInt.default(10_000),
  CACHE_L1_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
  USERS_READ_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  CACHE_ADMIN_TOKEN: z.string().optional(),
});

/** Reads and validates the environment once; the error names each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new Error(`Invalid environment: ${problems}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisSentinel: sentinelFromEnv(e),
    queueRedisUrl: e.QUEUE_REDIS_URL ?? e.REDIS_URL,
    cacheKeyPrefix: e.CACHE_KEY_PREFIX,
    cacheDefaultTtlMs: e.CACHE_DEFAULT_TTL,
    usersCacheTtlMs: e.USERS_CACHE_TTL,
    cacheL1MaxItems: e.CACHE_L1_MAX_ITEMS,
    cacheL1MaxBytes: e.CACHE_L1_MAX_BYTES,
    usersReadDelayMs: e.USERS_READ_DELAY_MS,
    cacheAdminToken: e.CACHE_ADMIN_TOKEN,
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
