/**
 * What the L1 costs in memory, and whether `l1.maxBytes` bounds it: 200,000 distinct user records
 * are `set` (64 calls in flight) into a cache whose L1 could hold them all by count
 * (maxItems 1,000,000) but not by bytes (maxBytes 64 MiB, then 16 MiB). Process RSS is read after
 * `global.gc()` before the sets, after the first one and after the last; the same run with
 * `l1: false` is the fixed baseline (the Redis client, Nest, and V8 garbage not yet handed back),
 * subtracted as "net". The first set is read apart because lru-cache allocates its TTL arrays
 * (sized by maxItems) then: a fixed cost, not a per-entry one.
 * Each run is a fresh process; the runs of the three setups are interleaved.
 * Run with `node --expose-gc --import ./bench/register.mjs bench/memory.bench.ts`; needs Redis at
 * REDIS_URL (default redis://127.0.0.1:6379). L2 keys go under a prefix of their own and are deleted.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { CacheModule, type CacheModuleOptions, CacheService } from '@cachekit/cache';
import { check, CONCURRENCY, machine } from './harness.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEYS = 200_000;
const MIB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RESULT_MARK = 'memory-bench-result ';

interface Setup {
  name: string;
  l1: CacheModuleOptions['l1'];
  maxBytes?: number;
}

const SETUPS: readonly Setup[] = [
  { name: 'l1: false (fixed baseline)', l1: false },
  { name: 'maxBytes 64 MiB, maxItems 1,000,000', l1: { maxBytes: 64 * MIB, maxItems: 1_000_000, maxTtl: '10m' }, maxBytes: 64 * MIB },
  { name: 'maxBytes 16 MiB, maxItems 1,000,000', l1: { maxBytes: 16 * MIB, maxItems: 1_000_000, maxTtl: '10m' }, maxBytes: 16 * MIB },
];

/** What one run (one process) measured. */
interface Measured {
  /** RSS after start-up and gc, before the sets */
  startRss: number;
  /** growth over all the sets */
  rssGrowth: number;
  heapGrowth: number;
  /** growth at the first set alone (lru-cache allocates its TTL arrays, sized by maxItems, then) */
  firstSetRss: number;
  firstSetHeap: number;
  entries: number;
  countedBytes: number;
}

function userRecord(i: number) {
  return {
    id: i,
    email: `user${i}@example.com`,
    name: `User ${i}`,
    settings: { theme: i % 2 ? 'dark' : 'light' },
    version: i % 10,
    createdAt: new Date(Date.UTC(2026, 0, 2) + i * 1000),
  };
}

async function settled(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, heap: heapUsed + external };
}

/** One run, in its own process: start the cache, set every key, report the growth. */
async function runOne(setup: Setup): Promise<Measured> {
  const keyPrefix = `bench:mem:${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  // No bus: one instance, and its subscriber connection is no part of what is measured.
  const module = CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix, bus: false, l1: setup.l1 });
  const context = await NestFactory.createApplicationContext(module, { logger: ['error', 'warn'], abortOnError: false });
  try {
    const cache = context.get(CacheService);
    const before = await settled();
    await cache.set('user:0', userRecord(0), { ttl: '10m' });
    const first = await settled();
    let next = 1;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < KEYS; i = next++) await cache.set(`user:${i}`, userRecord(i), { ttl: '10m' });
      }),
    );
    const after = await settled();
    const { l1 } = await cache.stats();
    const stored = await redis.exists(`${keyPrefix}{default:user:${KEYS - 1}}`);
    check(stored === 1, `the last key is not in Redis under ${keyPrefix}; has the key layout changed?`);
    return {
      startRss: before.rss,
      rssGrowth: after.rss - before.rss,
      heapGrowth: after.heap - before.heap,
      firstSetRss: first.rss - before.rss,
      firstSetHeap: first.heap - before.heap,
      entries: l1.entries,
      countedBytes: l1.bytes,
    };
  } finally {
    let deleted = 0;
    for await (const keys of redis.scanStream({ match: `${keyPrefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length) deleted += await redis.unlink(...keys);
    }
    process.stderr.write(`${setup.name}: deleted ${deleted} bench keys\n`);
    await context.close();
    await redis.quit();
  }
}

async function runInChild(setup: number): Promise<Measured> {
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), String(setup)], {
    maxBuffer: 16 * MIB,
  });
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  check(line, `no result from the run of "${SETUPS[setup].name}":\n${stdout}`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as Measured;
}

function markdown(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const align = head.map((_, i) => (i === 0 ? '---' : '---:'));
  return [head, align, ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const perEntry = (bytes: number, entries: number) => (entries ? `${Math.round(bytes / entries).toLocaleString('en-US')} B` : '–');

async function main(): Promise<void> {
  check(typeof globalThis.gc === 'function', 'run node with --expose-gc (see the header of bench/memory.bench.ts)');
  check(Number.isInteger(RUNS) && RUNS > 0, `BENCH_RUNS must be a positive whole number; got ${process.env.BENCH_RUNS}`);
  const runs: Measured[][] = SETUPS.map(() => []);
  for (let round = 0; round < RUNS; round++) {
    for (const [i, setup] of SETUPS.entries()) {
      process.stderr.write(`run ${round + 1}/${RUNS}: ${setup.name}\n`);
      runs[i].push(await runInChild(i));
    }
  }
  const results = runs.map((measured) => {
    const of = (field: keyof Measured) => median(measured.map((m) => m[field]));
    return {
      startRss: of('startRss'),
      rssGrowth: of('rssGrowth'),
      heapGrowth: of('heapGrowth'),
      firstSetRss: of('firstSetRss'),
      firstSetHeap: of('firstSetHeap'),
      entries: of('entries'),
      countedBytes: of('countedBytes'),
    };
  });
  const baseline = results[0];
  check(baseline.entries === 0, `l1: false kept ${baseline.entries} L1 entries`);
  for (const [i, setup] of SETUPS.entries()) {
    if (!setup.maxBytes) continue;
    for (const m of runs[i]) {
      check(m.countedBytes <= setup.maxBytes, `${setup.name}: the L1 counts ${m.countedBytes} bytes, over its maxBytes`);
      check(m.entries > 0 && m.entries < KEYS, `${setup.name}: ${m.entries} entries kept; the byte bound should have evicted some`);
    }
  }

  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  await redis.quit();

  console.log(`\n${machine()}, Redis ${redisVersion} at ${REDIS_URL}`);
  console.log(
    `${KEYS.toLocaleString('en-US')} distinct keys set (a user record varied per key, ${CONCURRENCY} calls in flight), ` +
      `L1 values: the default (copies); median of ${RUNS} runs per setup, each a fresh process, setups interleaved; ` +
      'RSS and heap (used + external) read after global.gc() before the sets, after the first and after the last',
  );
  console.log(
    `fixed baseline: with l1: false the same sets grow RSS by ${mib(baseline.rssGrowth)} and the heap by ${mib(baseline.heapGrowth)} ` +
      '(Redis client, Nest, V8 pages not yet handed back); "net" below subtracts it\n',
  );
  const bounded = SETUPS.flatMap((setup, i) => (setup.maxBytes ? [{ setup, r: results[i], maxBytes: setup.maxBytes }] : []));
  const net = (r: Measured, field: 'rssGrowth' | 'heapGrowth' | 'firstSetRss' | 'firstSetHeap') => r[field] - baseline[field];
  console.log(
    markdown(
      [
        'L1',
        'entries kept',
        'L1 bytes counted',
        'counted / entry',
        'RSS growth',
        'net RSS growth',
        'net RSS / entry',
        'net RSS / maxBytes',
      ],
      [
        ['l1: false (fixed baseline)', '0', '–', '–', mib(baseline.rssGrowth), '(baseline)', '–', '–'],
        ...bounded.map(({ setup, r, maxBytes }) => [
          setup.name,
          r.entries.toLocaleString('en-US'),
          mib(r.countedBytes),
          perEntry(r.countedBytes, r.entries),
          mib(r.rssGrowth),
          mib(net(r, 'rssGrowth')),
          perEntry(net(r, 'rssGrowth'), r.entries),
          `${(net(r, 'rssGrowth') / maxBytes).toFixed(2)}×`,
        ]),
      ],
    ),
  );
  console.log(
    '\nFixed costs, sized by maxItems whatever is cached (lru-cache allocates its arrays when built, and its TTL arrays ' +
      'at the first set), net of l1: false; the first-set one is part of the growth above, the start-up one is not:\n',
  );
  console.log(
    markdown(
      [
        'L1',
        'RSS at start-up',
        'RSS at the first set',
        'net RSS / entry after the first set',
        'net heap / entry after the first set',
        'net RSS after the first set / maxBytes',
      ],
      bounded.map(({ setup, r, maxBytes }) => [
        setup.name,
        `+${mib(r.startRss - baseline.startRss)}`,
        `+${mib(net(r, 'firstSetRss'))}`,
        perEntry(net(r, 'rssGrowth') - net(r, 'firstSetRss'), r.entries),
        perEntry(net(r, 'heapGrowth') - net(r, 'firstSetHeap'), r.entries),
        `${((net(r, 'rssGrowth') - net(r, 'firstSetRss')) / maxBytes).toFixed(2)}×`,
      ]),
    ),
  );
}

const setupArgument = process.argv[2];
if (setupArgument === undefined) {
  await main();
} else {
  const measured = await runOne(SETUPS[Number(setupArgument)]);
  console.log(`${RESULT_MARK}${JSON.stringify(measured)}`);
}
