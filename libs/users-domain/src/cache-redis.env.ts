import { type CacheModuleOptions, REDIS_URL_PATTERN } from '@cachekit/cache';
import { z } from 'zod';

const hostPorts = z
  .string()
  .regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, 'must be a comma-separated list of host:port')
  .optional();

/** A redis:// or rediss:// URL variable. */
export const redisUrlVariable = z.string().regex(REDIS_URL_PATTERN, 'must be a redis:// URL');

/**
 * The variables that say where the cache Redis is, for both apps' environment schemas (spread them
 * in): REDIS_CLUSTER_NODES (a Redis Cluster), else REDIS_SENTINELS + REDIS_SENTINEL_NAME (a primary
 * found through Sentinel), else REDIS_URL; credentials and TLS apply to cluster nodes and Sentinel
 * primaries (a URL carries its own).
 */
export const cacheRedisVariables = {
  REDIS_URL: redisUrlVariable.default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: hostPorts,
  REDIS_SENTINELS: hostPorts,
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_TLS: z.enum(['0', '1']).default('0'),
};

type CacheRedisEnv = z.infer<z.ZodObject<typeof cacheRedisVariables>>;

/** The variables both apps read (spread them into an app's schema): the database, both Redis, the key prefix, the admin token. */
export const sharedVariables = {
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/postgres'),
  ...cacheRedisVariables,
  QUEUE_REDIS_URL: redisUrlVariable.optional(),
  // Checked by CacheModule at start-up (length, no glob characters, no braces).
  CACHE_KEY_PREFIX: z.string().default('cache:'),
  CACHE_ADMIN_TOKEN: z.string().optional(),
};

/** The settings both apps have. */
export interface SharedConfig {
  databaseUrl: string;
  redisUrl: string;
  /** the cache Redis: REDIS_CLUSTER_NODES, else REDIS_SENTINELS + REDIS_SENTINEL_NAME, else REDIS_URL */
  cacheRedis: CacheModuleOptions['redis'];
  /** BullMQ's Redis (write-behind); REDIS_URL when unset */
  queueRedisUrl: string;
  cacheKeyPrefix: string;
  cacheAdminToken?: string;
}

/** The shared settings from the parsed variables. */
export function sharedConfigFromEnv(e: z.infer<z.ZodObject<typeof sharedVariables>>): SharedConfig {
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    cacheRedis: cacheRedisFromEnv(e),
    queueRedisUrl: e.QUEUE_REDIS_URL ?? e.REDIS_URL,
    cacheKeyPrefix: e.CACHE_KEY_PREFIX,
    cacheAdminToken: e.CACHE_ADMIN_TOKEN,
  };
}

/** The `redis` option of `CacheModule` from the parsed variables; throws naming the variable when they contradict. */
export function cacheRedisFromEnv(e: CacheRedisEnv): CacheModuleOptions['redis'] {
  const credentials = { username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD, tls: e.REDIS_TLS === '1' };
  if (e.REDIS_CLUSTER_NODES) {
    if (e.REDIS_SENTINELS) throw new Error('Invalid environment: REDIS_CLUSTER_NODES and REDIS_SENTINELS: set one of them');
    return { cluster: { nodes: addresses(e.REDIS_CLUSTER_NODES), ...credentials } };
  }
  if (e.REDIS_SENTINELS) {
    if (!e.REDIS_SENTINEL_NAME) throw new Error('Invalid environment: REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
    return { sentinel: { sentinels: addresses(e.REDIS_SENTINELS), name: e.REDIS_SENTINEL_NAME, ...credentials } };
  }
  return { url: e.REDIS_URL };
}

function addresses(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((entry) => {
    const [host, port] = entry.trim().split(':');
    return { host, port: Number(port) };
  });
}

/** Reads `schema` from `env` (empty variables count as unset); the error names each bad variable. */
export function parseEnvironment<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new Error(`Invalid environment: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  return parsed.data;
}
