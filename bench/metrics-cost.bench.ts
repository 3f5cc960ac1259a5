/**
 * What counting hits costs an L1 hit: the same `getOrSet` L1 hits (64 callers in flight, one key
 * each) on two caches in one process, one of them with its hit counting replaced by a no-op (a
 * private field is reached for that: this is a measurement, not an API). The target of issue 13 is
 * a cost of at most 10 %. Run with `npm run bench:metrics`; needs Redis at REDIS_URL.
 */
import { NestFactory } from '@nestjs/core';
import { CacheModule, type CacheEntryOptions, CacheService } from '@cachekit/cache';
import { randomBytes } from 'node:crypto';
import { REDIS_URL } from '../test/support/services.js';
import { check, concurrently, CONCURRENCY, machine, measure, table } from './harness.js';

const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;
const user = { id: 1, email: 'ada@example.com', name: 'Ada Lovelace', settings: { theme: 'dark' }, version: 3, createdAt: new Date(1) };
const options: CacheEntryOptions<typeof user> = { ttl: '10m' };

const contexts = await Promise.all(
  [0, 1].map(() =>
    NestFactory.createApplicationContext(
      CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, bus: false, l1: { maxTtl: '10m' } }),
      { logger: ['error', 'warn'] },
    ),
  ),
);
try {
  const [counted, uncounted] = contexts.map((context) => context.get(CacheService));
  (uncounted as unknown as { runtime: { metrics: { hit: () => void } } }).runtime.metrics.hit = () => undefined;
  let loads = 0;
  const load = async () => (loads++, user);
  for (const cache of [counted, uncounted]) for (let w = 0; w < CONCURRENCY; w++) await cache.getOrSet(`user:${w}`, load, options);
  const before = loads;
  const results = await measure([
    { name: 'L1 hit, hits not counted', run: concurrently((w) => uncounted.getOrSet(`user:${w}`, load, options)) },
    { name: 'L1 hit, counted in cache_hits_total', run: concurrently((w) => counted.getOrSet(`user:${w}`, load, options)) },
  ]);
  check(loads === before, 'the loader ran while only hits were measured');
  console.log(`\n${machine()}\n`);
  console.log(table(results));
} finally {
  const [first] = contexts;
  await first.get(CacheService).invalidate({ keys: Array.from({ length: CONCURRENCY }, (_, w) => `user:${w}`) });
  await Promise.all(contexts.map((context) => context.close()));
}
