import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { REDIS_URL_PATTERN } from './cache.constants.js';
import { namespaceDefaultsSchema, type NamespaceDefaults } from './cache.policy.js';
import type { Configurable, DurationOption } from './duration.js';
import { countSchema, durationSchema, functionSchema, headerNamesSchema, namespaceNameSchema, parseOptions } from './option-schemas.js';

/** A Redis primary found through Sentinel (ioredis' `sentinels` and `name`), with its credentials. */
export interface SentinelOptions {
  sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** the primary's name in the Sentinel configuration */
  name: string;
  username?: string;
  password?: string;
  /** credentials of the Sentinels themselves, when they have any */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** TLS to the primary and the Sentinels */
  tls?: boolean;
  db?: number;
}

/** How L1 hands out cached values: a copy per caller, or one deep-frozen value per entry. */
export type L1Values = 'copies' | 'frozen';

/** A Redis Cluster (ioredis' `Cluster`): seed nodes and what every node connection needs. */
export interface RedisClusterOptions {
  /** Some nodes of the cluster (any one that answers is enough); the others are discovered. */
  nodes: ReadonlyArray<{ host: string; port: number }>;
  username?: string;
  password?: string;
  /** TLS to every node */
  tls?: boolean;
  /** ioredis' `natMap`: each node's address as the cluster announces it, mapped to where this process reaches it */
  natMap?: Record<string, { host: string; port: number }>;
  /** ioredis options for every node connection, over the cache's own (timeouts, no offline queue) */
  redisOptions?: RedisOptions;
}

export interface CacheModuleOptions {
  /**
   * The cache Redis: a URL, a Sentinel setup or a Redis Cluster (the module owns and closes the
   * connections), or an ioredis client (`Redis` or `Cluster`) you own.
   */
  redis: { url: string } | { sentinel: SentinelOptions } | { cluster: RedisClusterOptions } | { client: Redis | Cluster };
  /** Prepended to every Redis key this module writes. Default `'cache:'`. */
  keyPrefix?: string;
  /** TTL when a call names none. Default `'60s'`. */
  defaultTtl?: DurationOption;
  /** TTL of a cached "not found" (`null`). `0` turns negative caching off. Default `'5s'`. */
  negativeTtl?: DurationOption;
  /**
   * The in-process L1; `false` turns it off. `maxTtl` caps how long an entry stays in L1, which
   * bounds how stale it can be if an invalidation message from another instance is lost.
   * `values`: `'copies'` (default) hands every caller its own copy of a cached value, so a caller
   * that mutates it changes nothing else; `'frozen'` hands every caller of an L1 or L2 hit the same
   * deep-frozen value of the entry (no copy per hit: faster, and a mutation throws in strict mode).
   */
  l1?: false | { maxItems?: number | string; maxBytes?: number | string; maxTtl?: DurationOption; values?: L1Values };
  /** Keep the L1 of every instance coherent over Redis pub/sub. Default `true`. */
  bus?: boolean;
  /** Bound on every Redis command, so a slow Redis never holds a request. Default `'250ms'`. */
  commandTimeout?: DurationOption;
  /** How long start-up waits for Redis before it goes on without L2. Default `'2s'`. */
  connectTimeout?: DurationOption;
  /** Per-namespace defaults (ttl, grace, xfetch, lock, timeouts...), so that callers name a namespace instead of repeating its policy. */
  namespaces?: Record<string, Configurable<NamespaceDefaults>>;
  /**
   * Where the cache's Prometheus series go: your registry (prom-client's global `register`, or
   * the one your `/metrics` serves). Default: a registry of the module's own, served by
   * `CacheMetricsController` and `cache.metrics()`, so that two apps in one process never collide.
   */
  metrics?: { registry?: Registry };
  /**
   * Largest value stored, in bytes of its serialized form (default 1 MiB). A larger one is served
   * but not cached (counted in `cache_entries_too_large_total`, logged once per interval).
   */
  maxEntrySize?: number | string;
  /** How `@Cacheable` HTTP routes tell principals apart and key responses. */
  http?: HttpCacheOptions;
  /**
   * After `threshold` Redis failures in a row (default 3), skip Redis for `cooldown` (default
   * `'1s'`): reads answer "miss" at once instead of waiting for a command timeout each.
   */
  circuitBreaker?: { threshold?: number | string; cooldown?: DurationOption };
}

export interface HttpCacheOptions {
  /**
   * Request headers that carry credentials: a request with any of them (or with `request.user`
   * set by a guard, or a client certificate) is never served a shared response. Default
   * `authorization`, `proxy-authorization`, `cookie`, `x-api-key`, `x-auth-token`.
   */
  credentialHeaders?: readonly string[];
  /**
   * Who is asking, for `vary: 'user'` routes: a stable id of the principal, or `undefined` to
   * fall back to `request.user.id` / `.sub`, then a hash of the credentials.
   */
  principal?: (request: any) => string | undefined;
  /**
   * Key responses by `request.hostname` (no port) as well. Off by default: the client controls
   * the Host header (behind a proxy, only as far as the framework's trust-proxy setting allows),
   * so it could fill the cache with copies. Host params of `@Controller({ host })` always count.
   */
  keyByHost?: boolean;
  /** Request headers every cached route's responses vary by (content negotiation, e.g. `accept-language`). */
  varyHeaders?: readonly string[];
}

export const DEFAULT_CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-auth-token'] as const;

export const redisUrlSchema = z.string().regex(REDIS_URL_PATTERN, 'must start with redis:// or rediss://');

const address = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });

const cacheOptionsSchema = z.strictObject({
  redis: z.union([
    z.strictObject({ url: redisUrlSchema }),
    z.strictObject({
      sentinel: z.strictObject({
        sentinels: z.array(address).min(1),
        name: z.string().min(1),
        username: z.string().optional(),
        password: z.string().optional(),
        sentinelUsername: z.string().optional(),
        sentinelPassword: z.string().optional(),
        tls: z.boolean().optional(),
        db: z.number().int().min(0).optional(),
      }),
    }),
    z.strictObject({
      cluster: z.strictObject({
        nodes: z.array(address).min(1),
        username: z.string().optional(),
        password: z.string().optional(),
        tls: z.boolean().optional(),
        natMap: z.record(z.string(), address).optional(),
        redisOptions: z.custom<RedisOptions>((o) => typeof o === 'object' && o !== null, 'ioredis options').optional(),
      }),
    }),
    z.strictObject({
      client: z.custom<Redis | Cluster>((c) => typeof c === 'object' && c !== null && 'sendCommand' in c, 'an ioredis client'),
    }),
  ]),
  keyPrefix: z
    .string()
    .max(64)
    // No braces either: the key layout puts each id in a `{hash tag}` after the prefix.
    .regex(/^[^*?[\]\\{}]*$/, 'must not contain Redis glob characters or braces')
    .default('cache:'),
  defaultTtl: durationSchema.default(60_000),
  negativeTtl: durationSchema.default(5_000),
  l1: z
    .union([
      z.literal(false),
      z.strictObject({
        maxItems: countSchema.default(10_000),
        maxBytes: countSchema.default(64 * 1024 * 1024),
        maxTtl: durationSchema.default(10_000),
        values: z.enum(['copies', 'frozen']).default('copies'),
      }),
    ])
    .default({ maxItems: 10_000, maxBytes: 64 * 1024 * 1024, maxTtl: 10_000, values: 'copies' }),
  bus: z.boolean().default(true),
  commandTimeout: durationSchema.default(250),
  connectTimeout: durationSchema.default(2_000),
  namespaces: z.record(namespaceNameSchema, namespaceDefaultsSchema).default({}),
  metrics: z
    .strictObject({
      registry: z
        .custom<Registry>(
          (r) => typeof r === 'object' && r !== null && typeof (r as Registry).registerMetric === 'function',
          'a prom-client Registry',
        )
        .optional(),
    })
    .default({}),
  maxEntrySize: countSchema.default(1024 * 1024),
  circuitBreaker: z
    .strictObject({ threshold: countSchema.default(3), cooldown: durationSchema.default(1_000) })
    .default({ threshold: 3, cooldown: 1_000 }),
  http: z
    .strictObject({
      credentialHeaders: headerNamesSchema.default([...DEFAULT_CREDENTIAL_HEADERS]),
      principal: functionSchema<(request: any) => string | undefined>().optional(),
      keyByHost: z.boolean().default(false),
      varyHeaders: headerNamesSchema.default([]),
    })
    .default({ credentialHeaders: [...DEFAULT_CREDENTIAL_HEADERS], keyByHost: false, varyHeaders: [] }),
});

/**
 * The validated module options: the same names as `CacheModuleOptions`, defaults filled in,
 * durations in milliseconds, sizes and counts as numbers.
 */
export type CacheConfig = z.output<typeof cacheOptionsSchema>;

/** Validates the module options once, at start-up; the error names the option and the bad value. */
export function resolveCacheConfig(options: CacheModuleOptions): CacheConfig {
  return parseOptions(cacheOptionsSchema, options, 'CacheModule');
}
