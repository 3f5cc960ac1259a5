import { afterAll, expect } from '@jest/globals';
import type { DynamicModule, INestApplication, ModuleMetadata } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { basename } from 'node:path';
import { CacheModule } from '../src/cache.module.js';
import type { CacheModuleOptions } from '../src/cache.options.js';
import { CacheRuntime } from '../src/cache.runtime.js';
import { CacheService } from '../src/cache.service.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from './services.js';

// Caches for the library's specs, after bentocache's CacheFactory: each one a started Nest module
// on the Redis at REDIS_URL under this spec file's own key prefix. Importing this file registers
// one afterAll that runs every teardown (the last registered first: a cache closes before the
// server or database it talks to goes), then drops the prefix's keys.

/** This spec file's key prefix (Jest loads this module once per file). Every key under it is dropped after the file. */
export const keyPrefix = uniquePrefix(basename(expect.getState().testPath ?? 'spec', '.spec.ts'));

/** A client of the test Redis for what a spec checks or does behind the cache's back (raw keys, CLIENT KILL). */
export const redis = new Redis(REDIS_URL, { lazyConnect: true });

const teardowns: Array<() => unknown> = [];
const modules = new WeakMap<CacheService, TestingModule>();

/** Runs `teardown` after the file, before whatever was registered earlier (a server, a database). */
export function onTeardown(teardown: () => unknown): void {
  teardowns.push(teardown);
}

afterAll(async () => {
  const failures: unknown[] = [];
  for (const teardown of teardowns.reverse()) {
    try {
      await teardown();
    } catch (error) {
      failures.push(error);
    }
  }
  teardowns.length = 0;
  await dropPrefix(redis, keyPrefix);
  await redis.quit();
  if (failures.length) throw new AggregateError(failures, 'teardown failed');
});

/** `CacheModule.forRoot` on the test Redis under this file's prefix; `options` override (a `keyPrefix` should extend `keyPrefix`). */
export function cacheModule(options: Partial<CacheModuleOptions> & { isGlobal?: boolean } = {}): DynamicModule {
  return CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix, ...options });
}

/** A compiled and initialised testing module, logging nothing; closed after the file, even when its init failed. */
export async function createTestingModule(metadata: ModuleMetadata): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  moduleRef.useLogger(false);
  onTeardown(() => moduleRef.close());
  await moduleRef.init();
  return moduleRef;
}

/** A started cache: `CacheService` of `cacheModule(options)`. */
export async function createCache(options: Partial<CacheModuleOptions> = {}): Promise<CacheService> {
  const moduleRef = await createTestingModule({ imports: [cacheModule(options)] });
  const cache = moduleRef.get(CacheService);
  modules.set(cache, moduleRef);
  return cache;
}

/** What a cache made by `createCache` runs on (its levels, bus and loads), for specs that look inside. */
export function runtimeOf(cache: CacheService): CacheRuntime {
  const moduleRef = modules.get(cache);
  if (!moduleRef) throw new Error('runtimeOf: not a cache made by createCache');
  return moduleRef.get(CacheRuntime);
}

/**
 * A started HTTP app (Express, or the adapter given), logging nothing, closed after the file.
 * `beforeInit` sets what must be set before `init()` (Express settings).
 */
export async function createApp<T extends INestApplication = INestApplication>(
  metadata: ModuleMetadata,
  { adapter, beforeInit }: { adapter?: AbstractHttpAdapter; beforeInit?: (app: T) => void } = {},
): Promise<T> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const app = adapter
    ? moduleRef.createNestApplication<T>(adapter, { logger: false })
    : moduleRef.createNestApplication<T>({ logger: false });
  onTeardown(() => app.close());
  beforeInit?.(app);
  await app.init();
  return app;
}
