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
import { CacheModule, CacheService, type CacheModuleOptions } from '@cachekit/cache';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;
const CONCURRENCY = 64;
const WARMUP_MS = 500;
const SAMPLES = 5;
const SAMPLE_MS = 600;
/** a batch is timed as one unit; warm-up doubles it until it takes at least this long */
const MIN_BATCH_MS = 20;
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

type Batch = (ops: number) => void | Promise<void>;

interface Case {
  name: string;
  run: Batch;
  /** name of the case this one is compared with; a case without one is a baseline */
  baseline?: string;
}

interface Result {
  name: string;
  opsPerSec: number;
  baseline?: string;
}

/** keeps results observable so the optimizer cannot drop the measured work */
let sink = 0;
let loads = 0;

function loadUser(): User {
  loads++;
  return structuredClone(user);
}

function sequentially(op: () => unknown): Batch {
  return async (ops) => {
    for (let i = 0; i < ops; i++) await op();
  };
}

/** `CONCURRENCY` workers, each awaiting its own calls, so that many are always in flight. */
function concurrently(op: (worker: number) => Promise<unknown>): Batch {
  return async (ops) => {
    const perWorker = Math.ceil(ops / CONCURRENCY);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        for (let i = 0; i < perWorker; i++) await op(worker);
      }),
    );
  };
}

/** Median ops/s over `SAMPLES` timed samples, after a warm-up that also sizes the batch. */
async function opsPerSecond(run: Batch): Promise<number> {
  let batch = CONCURRENCY;
  const warmUntil = performance.now() + WARMUP_MS;
  while (performance.now() < warmUntil) {
    const started = performance.now();
    await run(batch);
    if (performance.now() - started < MIN_BATCH_MS) batch *= 2;
  }
  const rates: number[] = [];
  for (let sample = 0; sample < SAMPLES; sample++) {
    const started = process.hrtime.bigint();
    const until = started + BigInt(SAMPLE_MS * 1e6);
    let now = started;
    let ops = 0;
    while (now < until) {
      await run(batch);
      ops += batch;
      now = process.hrtime.bigint();
    }
    rates.push(ops / (Number(now - started) / 1e9));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

function table(results: Result[]): string {
  const byName = new Map(results.map((r) => [r.name, r]));
  const rows = results.map((r) => {
    const base = r.baseline ? byName.get(r.baseline) : undefined;
    const ratio = base ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}× of "${base.name}"` : 'baseline';
    return `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${Math.round(1e9 / r.opsPerSec).toLocaleString('en-US')} | ${ratio} |`;
  });
  return ['| case | ops/s | ns/op | vs baseline |', '|---|---:|---:|---|', ...rows].join('\n');
}

async function cacheContext(options: Partial<CacheModuleOptions>): Promise<INestApplicationContext> {
  const module = CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, ...options });
  return NestFactory.createApplicationContext(module, { logger: ['error', 'warn'] });
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`bench setup: ${message}`);
}

async function deleteBenchKeys(redis: Redis): Promise<number> {
  let deleted = 0;
  for await (const keys of redis.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) deleted += await redis.unlink(...keys);
  }
  return deleted;
}

async function main(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  const withL1 = await cacheContext({});
  const l2Only = await cacheContext({ l1: false });
  try {
    const l1Cache = withL1.get(CacheService);
    const l2Cache = l2Only.get(CacheService);
    const workerKeys = Array.from({ length: CONCURRENCY }, (_, worker) => `user:${worker}`);

    const lru = new LRUCache<string, User>({ max: 10_000 });
    lru.set('user:1', user);
    const serialized = new LRUCache<string, string>({ max: 10_000 });
    serialized.set('user:1', JSON.stringify(user));

    // Seed through the service (one miss per key), then check each path hits the layer it is meant to.
    for (const key of workerKeys) await l2Cache.getOrSet(key, loadUser, { ttl: TTL });
    await l1Cache.getOrSet('user:1', loadUser, { ttl: TTL });
    const l1Lookup = await l1Cache.getOrSetWithStatus('user:1', loadUser, { ttl: TTL });
    const l2Lookup = await l2Cache.getOrSetWithStatus('user:1', loadUser, { ttl: TTL });
    assert(l1Lookup.layer === 'l1', `expected an L1 hit, got ${JSON.stringify(l1Lookup.status)} from ${l1Lookup.layer}`);
    assert(l2Lookup.layer === 'l2', `expected an L2 hit, got ${JSON.stringify(l2Lookup.status)} from ${l2Lookup.layer}`);
    assert(l2Lookup.value.createdAt instanceof Date, 'a cached Date should come back as a Date');
    // The bare GETs read the very keys the service reads: same payload, same Redis.
    const redisKeys = workerKeys.map((key) => `${KEY_PREFIX}default:${key}`);
    const payload = await redis.get(redisKeys[1]);
    assert(payload !== null, `no value at ${redisKeys[1]}; has the Redis key layout changed?`);
    const loadsBefore = loads;

    const cases: Case[] = [
      { name: 'lru-cache get (object)', run: (ops) => { for (let i = 0; i < ops; i++) sink += lru.get('user:1')!.version; } },
      {
        name: 'lru-cache get + JSON.parse (reference)',
        baseline: 'lru-cache get (object)',
        run: (ops) => { for (let i = 0; i < ops; i++) sink += JSON.parse(serialized.get('user:1')!).version; },
      },
      {
        name: 'CacheService.getOrSet, L1 hit',
        baseline: 'lru-cache get (object)',
        run: sequentially(async () => (sink += (await l1Cache.getOrSet('user:1', loadUser, { ttl: TTL })).version)),
      },
      { name: 'ioredis GET, sequential', run: sequentially(() => redis.get(redisKeys[1])) },
      {
        name: 'CacheService.getOrSet, L2 hit, sequential',
        baseline: 'ioredis GET, sequential',
        run: sequentially(() => l2Cache.getOrSet('user:1', loadUser, { ttl: TTL })),
      },
      // One key per worker: concurrent calls for a single key would be coalesced into one GET.
      { name: `ioredis GET, ${CONCURRENCY} in flight`, run: concurrently((worker) => redis.get(redisKeys[worker])) },
      {
        name: `CacheService.getOrSet, L2 hit, ${CONCURRENCY} in flight`,
        baseline: `ioredis GET, ${CONCURRENCY} in flight`,
        run: concurrently((worker) => l2Cache.getOrSet(workerKeys[worker], loadUser, { ttl: TTL })),
      },
    ];

    const results: Result[] = [];
    for (const { name, run, baseline } of cases) {
      process.stderr.write(`measuring ${name}…\n`);
      results.push({ name, baseline, opsPerSec: await opsPerSecond(run) });
    }
    assert(loads === loadsBefore, `the loader ran ${loads - loadsBefore} times while measuring hits`);

    const info = await redis.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    console.log(`\nnode ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}), Redis ${redisVersion} at ${REDIS_URL}`);
    console.log(`value: a ${payload.length}-byte envelope in Redis; median of ${SAMPLES} × ${SAMPLE_MS} ms samples after ${WARMUP_MS} ms warm-up\n`);
    console.log(table(results));
    process.stderr.write(`(checksum ${sink})\n`);
  } finally {
    await deleteBenchKeys(redis);
    await Promise.all([withL1.close(), l2Only.close()]);
    await redis.quit();
  }
}

await main();
