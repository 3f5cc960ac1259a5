import { toMilliseconds } from '@cachekit/cache';
import { parseEnvironment, type SharedConfig, sharedConfigFromEnv, sharedVariables } from '@cachekit/users-domain';
import { z } from 'zod';

/** Every setting users-api reads from the environment (`.env.example` lists them with their defaults). */
export interface AppConfig extends SharedConfig {
  port: number;
  cacheDefaultTtlMs: number;
  usersCacheTtlMs: number;
  cacheL1MaxItems: number;
  cacheL1MaxBytes: number;
  usersReadDelayMs: number;
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
  ...sharedVariables,
  CACHE_DEFAULT_TTL: duration('CACHE_DEFAULT_TTL').default(60_000),
  USERS_CACHE_TTL: duration('USERS_CACHE_TTL').default(300_000),
  CACHE_L1_MAX_ITEMS: positiveInt.default(10_000),
  CACHE_L1_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
  USERS_READ_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
});

/** Reads and validates the environment once; the error names each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const e = parseEnvironment(schema, env);
  return {
    ...sharedConfigFromEnv(e),
    port: e.PORT,
    cacheDefaultTtlMs: e.CACHE_DEFAULT_TTL,
    usersCacheTtlMs: e.USERS_CACHE_TTL,
    cacheL1MaxItems: e.CACHE_L1_MAX_ITEMS,
    cacheL1MaxBytes: e.CACHE_L1_MAX_BYTES,
    usersReadDelayMs: e.USERS_READ_DELAY_MS,
  };
}
