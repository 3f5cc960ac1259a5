/**
 * Throughput of CacheService hits against their baselines, measured in the same run:
 * an L1 hit against a bare `lru-cache` get, an L2 hit against a bare ioredis GET of the same key.
 * Run with `npm run bench`; needs Redis at REDIS_URL (default redis://127.0.0.1:6379).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { type CacheEntryOptions, CacheModule, type CacheModuleOptions, CacheService } from '@cachekit/cache';
import {
  check,
  concurrently,
  CONCURRENCY,
  type Group,
  measure,
  type Result,
  SAMPLE_MS,
  SAMPLES,
  sequentially,
  sink,
  synchronously,
  table,
} from './harness.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;
const TTL = '10m';

interface User {
  id: number;
  email: string;
  name: string;
  settings: { theme: string };
  version: number;
  createdAt: Date;
}

const user: User = {
  id: 1,
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  settings: { theme: 'dark' },
  version: 3,
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
};

let loads = 0;

function loadUser(): User {
  loads++;
  return structuredClone(user);
}

async function cacheContext(options: Partial<CacheModuleOptions>): Promise<INestApplicationContext> {
  const module = CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, ...options });
  return NestFactory.createApplicationContext(module, { logger: ['error', 'warn'] });
}

async function deleteBenchKeys(redis: Redis): Promise<number> {
  let deleted = 0;
  for await (const keys of redis.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) deleted += await redis.unlink(...keys);
  }
  return deleted;
}

async function main(): Promise<void> {
  // No retries: without Redis the bench should fail at once, not wait for it.
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  const contexts: INestApplicationContext[] = [];
  try {
    contexts.push(await cacheContext({}), await cacheContext({ l1: false }));
    const [l1Cache, l2Cache] = contexts.map((context) => context.get(CacheService));
    const hit: CacheEntryOptions<User> = { ttl: TTL };
    const workerKeys = Array.from({ length: CONCURRENCY }, (_, worker) => `user:${worker}`);

    const lru = new LRUCache<string, User>({ max: 10_000 });
    lru.set('user:1', user);
    const serialized = new LRUCache<string, string>({ max: 10_000 });
    serialized.set('user:1', JSON.stringify(user));

    // Seed through the service (one miss per key), then check each path hits the layer it is meant to.
    for (const key of workerKeys) await l2Cache.getOrSet(key, loadUser, hit);
    await l1Cache.getOrSet('user:1', loadUser, hit);
    const l1Lookup = await l1Cache.getOrSetWithStatus('user:1', loadUser, hit);
    const l2Lookup = await l2Cache.getOrSetWithStatus('user:1', loadUser, hit);
    check(l1Lookup.layer === 'l1', `expected an L1 hit, got ${l1Lookup.status} from ${l1Lookup.layer}`);
    check(l2Lookup.layer === 'l2', `expected an L2 hit, got ${l2Lookup.status} from ${l2Lookup.layer}`);
    check(l2Lookup.value.createdAt instanceof Date, 'a cached Date should come back as a Date');
    // The bare GETs read the very keys the service reads: same payload, same Redis.
    const redisKeys = workerKeys.map((key) => `${KEY_PREFIX}{default:${key}}`);
    const payload = await redis.get(redisKeys[1]);
    check(payload !== null, `no value at ${redisKeys[1]}; has the Redis key layout changed?`);
    const loadsBefore = loads;

    const groups: Group[] = [
      [
        { name: 'lru-cache get (object)', run: synchronously(() => lru.get('user:1')!.version) },
        {
          name: 'lru-cache get + JSON.parse (reference)',
          run: synchronously(() => JSON.parse(serialized.get('user:1')!).version),
        },
        {
          name: 'lru-cache get + JSON.parse with a pass-through reviver (reference)',
          run: synchronously(() => JSON.parse(serialized.get('user:1')!, (_key, value: unknown) => value).version),
        },
        {
          name: 'CacheService.getOrSet, L1 hit',
          run: sequentially(async () => (sink.value += (await l1Cache.getOrSet('user:1', loadUser, hit)).version)),
        },
      ],
      [
        { name: 'ioredis GET, sequential', run: sequentially(() => redis.get(redisKeys[1])) },
        {
          name: 'CacheService.getOrSet, L2 hit, sequential',
          run: sequentially(() => l2Cache.getOrSet('user:1', loadUser, hit)),
        },
      ],
      // One key per worker: concurrent calls for a single key would be coalesced into one GET.
      [
        {
          name: `ioredis GET, ${CONCURRENCY} in flight`,
          run: concurrently((worker) => redis.get(redisKeys[worker])),
        },
        {
          name: `CacheService.getOrSet, L2 hit, ${CONCURRENCY} in flight`,
          run: concurrently((worker) => l2Cache.getOrSet(workerKeys[worker], loadUser, hit)),
        },
      ],
    ];

    const results: Result[] = [];
    for (const group of groups) results.push(...(await measure(group)));
    check(loads === loadsBefore, `the loader ran ${loads - loadsBefore} times while only hits were measured`);

    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const cores = os.availableParallelism();
    console.log(`\nnode ${process.version}, ${cores} cores (${cpu}), Redis ${redisVersion} at ${REDIS_URL}`);
    console.log(
      `value: a user record, ${payload.length} bytes as stored in Redis; ` +
        `median of ${SAMPLES} interleaved ${SAMPLE_MS} ms samples per case\n`,
    );
    console.log(table(results));
  } finally {
    process.stderr.write(`deleted ${await deleteBenchKeys(redis)} bench keys\n`);
    await Promise.all(contexts.map((context) => context.close()));
    await redis.quit();
  }
}

await main();
