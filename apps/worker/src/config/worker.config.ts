import { parseEnvironment, type SharedConfig, sharedConfigFromEnv, sharedVariables } from '@cachekit/users-domain';
import { z } from 'zod';

/** Every setting the worker reads from the environment (`.env.example` lists them). */
export interface WorkerConfig extends SharedConfig {
  port: number;
  concurrency: number;
}

export const WORKER_CONFIG = Symbol('worker:config');

const schema = z.object({
  WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  ...sharedVariables,
  WRITE_BEHIND_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
});

/** Reads and validates the environment once; the error names each bad variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = parseEnvironment(schema, env);
  return { ...sharedConfigFromEnv(e), port: e.WORKER_PORT, concurrency: e.WRITE_BEHIND_CONCURRENCY };
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
