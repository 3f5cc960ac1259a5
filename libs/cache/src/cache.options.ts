import type { Redis } from 'ioredis';
import { z } from 'zod';
import { NAMESPACE_PATTERN } from './cache.constants.js';
import { CacheError } from './cache.errors.js';
import { type NamespaceDefaults, resolvePolicy } from './cache.policy.js';
import { type Duration, toMilliseconds } from './duration.js';
import { WRITE_BEHIND_QUEUE, type WriteBehindConfig } from './write-behind/write-behind.queue.js';

export interface CacheModuleOptions {
  /** The cache Redis: a URL (the module owns and closes the connection) or a client you own. */
  redis: { url: string } | { client: Redis };
  /** Prepended to every Redis key this module writes. Default `'cache:'`. */
  keyPrefix?: string;
  /** TTL when a call names none. Default `'60s'`. */
  defaultTtl?: Duration;
  /** TTL of a cached "not found" (`null`). `0` turns negative caching off. Default `'5s'`. */
  negativeTtl?: Duration;
  /**
   * The in-process L1; `false` turns it off. `maxTtl` caps how long an entry stays in L1, which
   * bounds how stale it can be if an invalidation message from another instance is lost.
   */
  l1?: false | { maxItems?: number; maxBytes?: number; maxTtl?: Duration };
  /** Keep the L1 of every instance coherent over Redis pub/sub. Default `true`. */
  bus?: boolean;
  /**
   * Write-behind through BullMQ on its own Redis (give it `noeviction` and AOF: a queue must never
   * lose keys). Jobs retry with exponential backoff and jitter, starting at `backoff`.
   */
  writeBehind?: { redis: { url: string }; queueName?: string; attempts?: number; backoff?: Duration };
  /** Bound on every Redis command, so a slow Redis never holds a request. Default `'250ms'`. */
  commandTimeout?: Duration;
  /** How long start-up waits for Redis before it goes on without L2. Default `'2s'`. */
  connectTimeout?: Duration;
  /** Per-namespace defaults (ttl, grace, xfetch, lock, timeouts...), so that callers name a namespace instead of repeating its policy. */
  namespaces?: Record<string, NamespaceDefaults>;
}

export interface CacheConfig {
  redis: { url: string } | { client: Redis };
  keyPrefix: string;
  defaultTtlMs: number;
  negativeTtlMs: number;
  l1: false | { maxItems: number; maxBytes: number; maxTtlMs: number };
  bus: boolean;
  writeBehind?: WriteBehindConfig;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  namespaces: Record<string, NamespaceDefaults>;
}

const duration = z.unknown().transform((value, ctx) => {
  try {
    return toMilliseconds(value, 'a duration');
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const schema = z.object({
  redis: z.union([
    z.object({ url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://') }),
    z.object({ client: z.custom<Redis>((c) => typeof c === 'object' && c !== null && 'sendCommand' in c, 'an ioredis client') }),
  ]),
  keyPrefix: z.string().max(64).regex(/^[^*?[\]\\]*$/, 'must not contain Redis glob characters').default('cache:'),
  defaultTtl: duration.default(60_000),
  negativeTtl: duration.default(5_000),
  l1: z
    .union([
      z.literal(false),
      z.object({
        maxItems: z.number().int().positive().default(10_000),
        maxBytes: z.number().int().positive().default(64 * 1024 * 1024),
        maxTtl: duration.default(10_000),
      }),
    ])
    .default({ maxItems: 10_000, maxBytes: 64 * 1024 * 1024, maxTtl: 10_000 }),
  bus: z.boolean().default(true),
  writeBehind: z
    .object({
      redis: z.object({ url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://') }),
      queueName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default(WRITE_BEHIND_QUEUE),
      attempts: z.number().int().min(1).max(100).default(12),
      backoff: duration.default(200),
    })
    .optional(),
  commandTimeout: duration.default(250),
  connectTimeout: duration.default(2_000),
  namespaces: z
    .record(z.string(), z.record(z.string(), z.unknown()))
    .default({})
    .superRefine((namespaces, ctx) => {
      for (const [name, defaults] of Object.entries(namespaces)) {
        if (!NAMESPACE_PATTERN.test(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid namespace name' });
          continue;
        }
        try {
          resolvePolicy({}, defaults as NamespaceDefaults);
        } catch (error) {
          ctx.addIssue({ code: 'custom', path: [name], message: (error as Error).message });
        }
      }
    }),
});

/** Validates the module options once, at start-up; the error names the option and the bad value. */
export function resolveCacheConfig(options: CacheModuleOptions): CacheConfig {
  const parsed = schema.safeParse(options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.join('.') || '(options)';
    const got = issue.path.reduce<unknown>((node, part) => (node as Record<PropertyKey, unknown>)?.[part], options);
    throw new CacheError(
      'CACHE_INVALID_OPTION',
      `CacheModule option "${path}" is invalid: ${issue.message} (got ${describe(got)})`,
    );
  }
  const o = parsed.data;
  return {
    redis: o.redis as CacheConfig['redis'],
    keyPrefix: o.keyPrefix,
    defaultTtlMs: o.defaultTtl,
    negativeTtlMs: o.negativeTtl,
    l1: o.l1 === false ? false : { maxItems: o.l1.maxItems, maxBytes: o.l1.maxBytes, maxTtlMs: o.l1.maxTtl },
    bus: o.bus,
    writeBehind: o.writeBehind && {
      url: o.writeBehind.redis.url,
      keyPrefix: o.keyPrefix,
      queueName: o.writeBehind.queueName,
      attempts: o.writeBehind.attempts,
      backoffMs: o.writeBehind.backoff,
      commandTimeoutMs: Math.max(o.commandTimeout, 1_000),
    },
    commandTimeoutMs: o.commandTimeout,
    connectTimeoutMs: o.connectTimeout,
    namespaces: o.namespaces as Record<string, NamespaceDefaults>,
  };
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return JSON.stringify(value) ?? String(value);
}
