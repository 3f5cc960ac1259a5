/**
 * What removing 10,000 entries costs, by tag and by pattern, in a small Redis and in one that also
 * holds 1,000,000 unrelated keys. `invalidateTags` reads the tag's index, so its cost should not
 * move with the keyspace; `invalidatePattern` SCANs the whole keyspace (the baseline that shows
 * why tags exist). Starts its own redis-server on a free loopback port, so the unrelated keys never
 * touch the shared Redis: `node --import ./bench/register.mjs bench/tag-invalidation.bench.ts`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../test/support/services.js';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { CacheModule, type CacheNamespace, CacheService, glob } from '@cachekit/cache';

const KEY_PREFIX = 'bench:';
const NAMESPACE = 'items';
const TAG = 'big';
const ENTRIES = 10_000;
const UNRELATED = 1_000_000;
const REPEATS = 5;
/** sets in flight while the entries are (re)created */
const FILL_CONCURRENCY = 256;
const FILL_BATCH = 10_000;

interface Sample {
  ms: number;
  /** time Redis itself spent on the case's top-level commands (INFO commandstats) */
  serverMs: number;
  /** top-level Redis commands the case sent, by name */
  calls: Record<string, number>;
  removed: number;
  keyspace: number;
}

interface Row {
  name: string;
  samples: Sample[];
  baseline?: Row;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    // No persistence; DEBUG allowed from loopback only, for DEBUG POPULATE.
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      os.tmpdir(),
      '--enable-debug-command',
      'local',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${output}`);
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return child;
    } catch {
      // not listening yet
    } finally {
      probe.disconnect();
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer on port ${port} in 5 s:\n${output}`);
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  if (await Promise.race([exited.then(() => false), sleep(5_000).then(() => true)])) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Adds `count` keys that are no entry of the cache: DEBUG POPULATE when allowed, else pipelined SETs. */
async function fillUnrelated(redis: Redis, count: number): Promise<string> {
  const [, debug] = (await redis.config('GET', 'enable-debug-command')) as string[];
  if (debug === 'yes' || debug === 'local') {
    await redis.call('DEBUG', 'POPULATE', count, 'unrelated', 32);
    return 'DEBUG POPULATE';
  }
  for (let from = 0; from < count; from += FILL_BATCH) {
    const pipeline = redis.pipeline();
    for (let i = from; i < Math.min(count, from + FILL_BATCH); i++) pipeline.set(`unrelated:${i}`, `value:${i}`);
    await pipeline.exec();
  }
  return `pipelined SET in batches of ${FILL_BATCH}`;
}

/** (Re)creates the entries `x:0`..`x:9999` through the cache, tagged or not. */
async function createEntries(items: CacheNamespace, tagged: boolean): Promise<void> {
  const options = tagged ? { ttl: '10m' as const, tags: [TAG] } : { ttl: '10m' as const };
  let next = 0;
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      while (next < ENTRIES) {
        const i = next++;
        await items.set(`x:${i}`, { id: i, name: `item ${i}`, updatedAt: new Date() }, options);
      }
    }),
  );
}

/** How many of the entries `x:*` are still in Redis. */
async function remaining(redis: Redis): Promise<number> {
  const keys = Array.from({ length: ENTRIES }, (_, i) => `${KEY_PREFIX}${NAMESPACE}:x:${i}`);
  return redis.exists(...keys);
}

type Removal = 'tag' | 'pattern' | 'unlink';

/** What the tag script unlinks: each entry and the lease name of its load (most do not exist). */
const rawKeys = Array.from({ length: ENTRIES }, (_, i) => [
  `${KEY_PREFIX}${NAMESPACE}:x:${i}`,
  `${KEY_PREFIX}~lock:${NAMESPACE}:x:${i}`,
]).flat();

/** The commands each case sends itself (commands run inside a script are counted apart by Redis). */
const TOP_LEVEL: Record<Removal, readonly string[]> = {
  tag: ['eval', 'evalsha', 'publish'],
  pattern: ['scan', 'unlink', 'publish'],
  unlink: ['unlink'],
};

function commandStats(info: string, commands: readonly string[]): { serverMs: number; calls: Record<string, number> } {
  let usec = 0;
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+)/gm)) {
    if (!commands.includes(match[1])) continue;
    calls[match[1]] = Number(match[2]);
    usec += Number(match[3]);
  }
  return { serverMs: usec / 1000, calls };
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`bench: ${message}`);
}

/** One timed removal of freshly created entries; checks that exactly those entries went. */
async function measureOnce(redis: Redis, items: CacheNamespace, how: Removal): Promise<Sample> {
  await createEntries(items, how === 'tag');
  check((await remaining(redis)) === ENTRIES, `expected ${ENTRIES} entries before the ${how} invalidation`);
  const keyspace = await redis.dbsize();
  await redis.config('RESETSTAT');
  const started = performance.now();
  const removed =
    how === 'tag'
      ? await items.invalidateTags(TAG)
      : how === 'pattern'
        ? await items.invalidatePattern(glob`x:*`)
        : await redis.unlink(...rawKeys);
  const ms = performance.now() - started;
  const { serverMs, calls } = commandStats(await redis.info('commandstats'), TOP_LEVEL[how]);
  const left = await remaining(redis);
  check(left === 0, `${left} entries were left after the ${how} invalidation`);
  check(removed === ENTRIES, `the ${how} invalidation reported ${removed} removed, expected ${ENTRIES}`);
  return { ms, serverMs, calls, removed, keyspace };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function table(rows: readonly Row[]): string {
  const head = [
    '| case | keyspace size | entries removed | median ms | range ms | of which in Redis, ms | Redis commands | ratio (with 1M / without) |',
    '|---|---:|---:|---:|---:|---:|---|---|',
  ];
  const lines = rows.map((row) => {
    const times = row.samples.map((s) => s.ms);
    const m = median(times);
    const keyspace = Math.round(median(row.samples.map((s) => s.keyspace))).toLocaleString('en-US');
    const removed = median(row.samples.map((s) => s.removed)).toLocaleString('en-US');
    const range = `${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)}`;
    const ratio = row.baseline ? `${(m / median(row.baseline.samples.map((s) => s.ms))).toFixed(2)}×` : 'baseline';
    const serverMs = median(row.samples.map((s) => s.serverMs)).toFixed(1);
    const last = row.samples[row.samples.length - 1].calls;
    const calls = Object.entries(last)
      .map(([command, count]) => `${count.toLocaleString('en-US')} ${command.toUpperCase()}`)
      .join(', ');
    return `| ${row.name} | ${keyspace} | ${removed} | ${m.toFixed(1)} | ${range} | ${serverMs} | ${calls} | ${ratio} |`;
  });
  return [...head, ...lines].join('\n');
}

async function main(): Promise<void> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  process.stderr.write(`starting redis-server on port ${port}\n`);
  const server = await startRedis(port);
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  let context: INestApplicationContext | undefined;
  try {
    await redis.connect();
    context = await NestFactory.createApplicationContext(CacheModule.forRoot({ redis: { url }, keyPrefix: KEY_PREFIX }), {
      logger: ['error', 'warn'],
    });
    const items = context.get(CacheService).namespace(NAMESPACE);

    const rows: Row[] = [];
    const phases: { label: string; tag: Sample[]; pattern: Sample[]; unlink: Sample[] }[] = [];
    let fillMethod = '';
    let fillMs = 0;
    for (const label of ['without', 'with 1M']) {
      if (label !== 'without') {
        process.stderr.write(`adding ${UNRELATED.toLocaleString('en-US')} unrelated keys\n`);
        const started = performance.now();
        fillMethod = await fillUnrelated(redis, UNRELATED);
        fillMs = performance.now() - started;
        check((await redis.dbsize()) >= UNRELATED, 'the unrelated keys are missing');
      }
      const phase = { label, tag: [] as Sample[], pattern: [] as Sample[], unlink: [] as Sample[] };
      // Interleaved, so that a noisy moment slows every case alike; the first round warms up and is dropped.
      for (let repeat = -1; repeat < REPEATS; repeat++) {
        process.stderr.write(`${label} unrelated keys: round ${repeat + 1} of ${REPEATS}\n`);
        const tag = await measureOnce(redis, items, 'tag');
        const pattern = await measureOnce(redis, items, 'pattern');
        const unlink = await measureOnce(redis, items, 'unlink');
        if (repeat < 0) continue;
        phase.tag.push(tag);
        phase.pattern.push(pattern);
        phase.unlink.push(unlink);
      }
      phases.push(phase);
    }
    const [small, large] = phases;
    const tagSmall: Row = { name: `invalidateTags('${TAG}')`, samples: small.tag };
    const patternSmall: Row = { name: 'invalidatePattern(glob`x:*`)', samples: small.pattern };
    const unlinkName = `reference: one UNLINK of the ${(2 * ENTRIES).toLocaleString('en-US')} keys the tag script unlinks`;
    const unlinkSmall: Row = { name: unlinkName, samples: small.unlink };
    rows.push(
      tagSmall,
      { name: `invalidateTags('${TAG}')`, samples: large.tag, baseline: tagSmall },
      patternSmall,
      { name: 'invalidatePattern(glob`x:*`)', samples: large.pattern, baseline: patternSmall },
      unlinkSmall,
      { name: unlinkName, samples: large.unlink, baseline: unlinkSmall },
    );

    const info = await redis.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    console.log(
      `\nnode ${process.version}, ${os.availableParallelism()} cores (${cpu}), Redis ${redisVersion} (own instance on port ${port})`,
    );
    console.log(
      `${ENTRIES.toLocaleString('en-US')} entries in namespace '${NAMESPACE}' (re-created before each run, through CacheService.set, L1 on); ` +
        `${UNRELATED.toLocaleString('en-US')} unrelated keys added with ${fillMethod} in ${Math.round(fillMs)} ms; ` +
        `median of ${REPEATS} runs per case after one warm-up round; the cases interleaved\n`,
    );
    console.log(table(rows));
  } finally {
    await context?.close();
    redis.disconnect();
    await stopRedis(server);
    process.stderr.write(`stopped redis-server on port ${port}\n`);
  }
}

await main();
