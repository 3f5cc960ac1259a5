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

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;
const CONCURRENCY = 64;
const WARMUP_MS = 500;
const SAMPLES = 7;
const SAMPLE_MS = 400;
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
}

/** The first case of a group is the baseline of the others; a group's samples are interleaved. */
type Group = readonly Case[];

interface Result {
  name: string;
  /** median of the samples */
  opsPerSec: number;
  /** (max - min) / median of the samples */
  spread: number;
  baseline?: Result;
}

/** keeps results observable so the optimizer cannot drop the measured work */
let sink = 0;
let loads = 0;

function loadUser(): User {
  loads++;
  return structuredClone(user);
}

function synchronously(op: () => number): Batch {
  return (ops) => {
    for (let i = 0; i < ops; i++) sink += op();
  };
}

function sequentially(op: () => Promise<unknown>): Batch {
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

/** Runs `run` for `WARMUP_MS`, doubling the batch until one takes `MIN_BATCH_MS`; returns the batch size. */
async function warmUp(run: Batch): Promise<number> {
  let batch = CONCURRENCY;
  const until = performance.now() + WARMUP_MS;
  while (performance.now() < until) {
    const started = performance.now();
    await run(batch);
    if (performance.now() - started < MIN_BATCH_MS) batch *= 2;
  }
  return batch;
}

async function sample(run: Batch, batch: number): Promise<number> {
  const started = process.hrtime.bigint();
  const until = started + BigInt(SAMPLE_MS * 1e6);
  let now = started;
  let ops = 0;
  while (now < until) {
    await run(batch);
    ops += batch;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - started) / 1e9);
}

/** Interleaves the samples of a group, so a noisy neighbour slows the baseline and its cases alike. */
async function measure(group: Group): Promise<Result[]> {
  const batches: number[] = [];
  for (const { name, run } of group) {
    process.stderr.write(`warming up ${name}\n`);
    batches.push(await warmUp(run));
  }
  const rates = group.map((): number[] => []);
  for (let round = 0; round < SAMPLES; round++) {
    for (const [i, { run }] of group.entries()) rates[i].push(await sample(run, batches[i]));
  }
  const results = group.map(({ name }, i): Result => {
    const sorted = rates[i].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return { name, opsPerSec: median, spread: (sorted[sorted.length - 1] - sorted[0]) / median };
  });
  for (const result of results.slice(1)) result.baseline = results[0];
  return results;
}

function ratio(result: Result): string {
  if (!result.baseline) return 'baseline';
  const r = result.opsPerSec / result.baseline.opsPerSec;
  const shown = r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}× (1/${Math.round(1 / r)})`;
  return `${shown} of ${result.baseline.name}`;
}

function table(results: readonly Result[]): string {
  const rows = results.map((r) =>
    [
      r.name,
      Math.round(r.opsPerSec).toLocaleString('en-US'),
      Math.round(1e9 / r.opsPerSec).toLocaleString('en-US'),
      `${Math.round(r.spread * 100)}%`,
      ratio(r),
    ].join(' | '),
  );
  const head = ['| case | ops/s | ns/op | sample range | vs baseline |', '|---|---:|---:|---:|---|'];
  return [...head, ...rows.map((row) => `| ${row} |`)].join('\n');
}

async function cacheContext(options: Partial<CacheModuleOptions>): Promise<INestApplicationContext> {
  const module = CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, ...options });
  return NestFactory.createApplicationContext(module, { logger: ['error', 'warn'] });
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`bench: ${message}`);
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
    const redisKeys = workerKeys.map((key) => `${KEY_PREFIX}default:${key}`);
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
          run: sequentially(async () => (sink += (await l1Cache.getOrSet('user:1', loadUser, hit)).version)),
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
