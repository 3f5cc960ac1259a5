/**
 * Write-behind against writing to the database at once, in one run, on the users table:
 *   1. accepted writes per second of `CacheNamespace.writeBehind` (cache + BullMQ job) next to
 *      direct synchronous writes (`persistUserSettings`, one UPDATE each), same concurrency, same
 *      number of writes, same spread over users;
 *   2. the built worker draining the queue: how long it takes, and how many database writes the
 *      accepted writes needed once coalesced, with the worker started after every write was
 *      accepted (most coalescing), with the worker running while they arrive as fast as they can,
 *      and with the worker running while they arrive at a pace it keeps up with.
 * The queue and the cache use a Redis database index of their own, flushed before and after.
 * Needs the built worker (`npm run build`), Redis at REDIS_URL, PostgreSQL at DATABASE_URL. Then
 * `node --import ./bench/register.mjs bench/write-behind.bench.ts`.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stripVTControlCharacters } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { type DynamicModule, type INestApplicationContext, Module } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { CacheModule, CacheService } from '@cachekit/cache';
import { WriteBehindModule, writeBehindQueueAddress } from '@cachekit/cache/write-behind';
import { persistUserSettings, USER_SETTINGS_ENTITY, USERS_DOMAIN_ENTITIES, USERS_DOMAIN_MIGRATIONS } from '@cachekit/users-domain';
import { createTestDatabase, REDIS_URL } from '../test/support/services.js';
import { WorkerProcess } from '../test/support/worker-process.js';

const WORKER_MAIN = resolve('dist/apps/worker/main.js');
/** the Redis database index of this bench's queue and cache; flushed before and after */
const REDIS_DB = Number(process.env.BENCH_REDIS_DB ?? 9);
const USERS = 200;
const WRITES = 5_000;
const IN_FLIGHT = 32;
/** writes per second of the paced run: below what the worker persists, so it keeps up */
const PACED_RATE = 500;
/** the writes without a worker are measured in this many slices, the three kinds taking turns */
const SLICES = 5;
const NAMESPACE = 'users';
const KEY_PREFIX = 'bench:wb:';
const DRAIN_TIMEOUT_MS = 60_000;
const DRAIN_POLL_MS = 20;

const redisUrl = (() => {
  const url = new URL(REDIS_URL);
  url.pathname = `/${REDIS_DB}`;
  return url.toString();
})();

interface WriteRun {
  name: string;
  ms: number;
  /** CPU time of this process (user + system) while the run's writes were in flight, µs */
  cpuUs: number;
  latencies: number[];
  /** last accepted (or written) version and settings per user */
  last: Map<number, { version: number; settings: Record<string, unknown> }>;
  modes: Record<string, number>;
}

type Write = (id: number, settings: Record<string, unknown>, i: number) => Promise<{ version: number; mode: string }>;

/** The cache with write-behind on one Redis, as users-api configures it. */
@Module({})
class BenchModule {
  static register(url: string): DynamicModule {
    return {
      module: BenchModule,
      imports: [
        CacheModule.forRoot({ isGlobal: true, redis: { url }, keyPrefix: KEY_PREFIX }),
        WriteBehindModule.forRoot({ redis: { url } }),
      ],
    };
  }
}

function newRun(name: string): WriteRun {
  return { name, ms: 0, cpuUs: 0, latencies: [], last: new Map(), modes: {} };
}

/** Writes `from` to `to` - 1, `IN_FLIGHT` at a time, into `run`; write i goes to user ids[i % ids.length]. */
async function writeSlice(run: WriteRun, ids: readonly number[], write: Write, from: number, to: number): Promise<WriteRun> {
  let next = from;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = next++; i < to; i = next++) {
        const id = ids[i % ids.length];
        const settings = { theme: `theme-${i}`, write: i };
        const t0 = performance.now();
        const { version, mode } = await write(id, settings, i);
        run.latencies.push(performance.now() - t0);
        run.modes[mode] = (run.modes[mode] ?? 0) + 1;
        const seen = run.last.get(id);
        if (!seen || seen.version < version) run.last.set(id, { version, settings });
      }
    }),
  );
  run.ms += performance.now() - started;
  const used = process.cpuUsage(cpu);
  run.cpuUs += used.user + used.system;
  return run;
}

/** Open loop: write i is sent at `i / PACED_RATE` s whatever the earlier ones are doing; latency from that time. */
async function writePaced(run: WriteRun, ids: readonly number[], write: Write): Promise<WriteRun> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < WRITES; i++) {
    const scheduled = started + (1000 * i) / PACED_RATE;
    const wait = scheduled - performance.now();
    if (wait > 0) await sleep(wait);
    const from = Math.min(scheduled, performance.now());
    const id = ids[i % ids.length];
    const settings = { theme: `theme-${i}`, write: i };
    pending.push(
      write(id, settings, i).then(({ version, mode }) => {
        run.latencies.push(performance.now() - from);
        run.modes[mode] = (run.modes[mode] ?? 0) + 1;
        const seen = run.last.get(id);
        if (!seen || seen.version < version) run.last.set(id, { version, settings });
      }),
    );
  }
  await Promise.all(pending);
  run.ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  run.cpuUs = used.user + used.system;
  return run;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isNaN(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n.toFixed(1));

interface Drain {
  /** from `from` until no job is waiting, active or delayed and no write is pending */
  ms: number;
  failed: number;
}

async function drained(queue: Queue, redis: Redis, from: number): Promise<Drain> {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  // The hashes of pending writes (one per namespace); found by name, as their prefix is the library's business.
  const pendingKeys: string[] = [];
  for await (const keys of redis.scanStream({ match: `*wb:pending:${NAMESPACE}`, count: 1000 }) as AsyncIterable<string[]>)
    pendingKeys.push(...keys);
  process.stderr.write(`waiting for the queue to drain; pending-write hashes: ${pendingKeys.join(', ') || 'none left'}\n`);
  for (;;) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
    let pending = 0;
    for (const key of pendingKeys) pending += await redis.hlen(key);
    if (counts.waiting + counts.active + counts.delayed + counts.prioritized === 0 && pending === 0) {
      return { ms: performance.now() - from, failed: counts.failed };
    }
    if (performance.now() > deadline)
      throw new Error(`bench: queue not drained in ${DRAIN_TIMEOUT_MS} ms: ${JSON.stringify({ ...counts, pending })}`);
    await sleep(DRAIN_POLL_MS);
  }
}

/** Database writes the users in `ids` received (each UPDATE bumps `version`, which starts at 1), and rows not at their last write. */
async function databaseWrites(
  dataSource: DataSource,
  ids: readonly number[],
  last: WriteRun['last'],
): Promise<{ writes: number; wrong: number }> {
  const rows: Array<{ id: number; version: number; sv: string; settings: Record<string, unknown> }> = await dataSource.query(
    'SELECT id, version, settings_version::text AS sv, settings FROM users WHERE id = ANY($1)',
    [ids],
  );
  let wrong = 0;
  for (const row of rows) {
    const expected = last.get(row.id);
    if (!expected || Number(row.sv) !== expected.version || JSON.stringify(row.settings) !== JSON.stringify(expected.settings)) wrong++;
  }
  return { writes: rows.reduce((sum, row) => sum + row.version - 1, 0), wrong };
}

/** write_behind_jobs_total by status, from the worker's /metrics. */
async function workerJobs(worker: WorkerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  const jobs: Record<string, number> = {};
  for (const match of text.matchAll(/^write_behind_jobs_total\{status="(\w+)"\} (\d+)/gm)) jobs[match[1]] = Number(match[2]);
  return jobs;
}

async function main(): Promise<void> {
  if (!existsSync(WORKER_MAIN)) throw new Error(`bench: ${WORKER_MAIN} is missing; run \`npm run build\` first`);
  const redis = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: null });
  await redis.connect();
  const before = await redis.dbsize();
  await redis.flushdb();
  process.stderr.write(`flushed Redis db ${REDIS_DB} (${before} keys)\n`);
  const database = await createTestDatabase('bench_write_behind');
  const dataSource = new DataSource({
    type: 'postgres',
    url: database.url,
    entities: USERS_DOMAIN_ENTITIES,
    migrations: USERS_DOMAIN_MIGRATIONS,
    synchronize: false,
    // as many connections as writes in flight, so the direct baseline is limited by PostgreSQL, not by the pool
    extra: { max: IN_FLIGHT },
  });
  const narrow = new DataSource({ type: 'postgres', url: database.url, entities: USERS_DOMAIN_ENTITIES, synchronize: false });
  const address = writeBehindQueueAddress(KEY_PREFIX);
  const queue = new Queue(address.name, { connection: redis, prefix: address.prefix });
  queue.on('error', () => undefined);
  let context: INestApplicationContext | undefined;
  const workers: WorkerProcess[] = [];
  try {
    await dataSource.initialize();
    await dataSource.runMigrations();
    await narrow.initialize();
    // Five groups of users, one per measure, so that each one's row versions count only its own writes.
    const created: Array<{ id: number }> = await dataSource.query(
      `INSERT INTO users (email, name) SELECT 'wb-' || g || '@example.com', 'user ' || g FROM generate_series(1, $1::int) g RETURNING id`,
      [5 * USERS],
    );
    const ids = created.map((row) => row.id).sort((a, b) => a - b);
    const [direct32Ids, direct10Ids, afterIds, duringIds, pacedIds] = [0, 1, 2, 3, 4].map((g) => ids.slice(g * USERS, (g + 1) * USERS));

    context = await NestFactory.createApplicationContext(BenchModule.register(redisUrl), { logger: ['error', 'warn'] });
    await context.init();
    const users = context.get(CacheService).namespace(NAMESPACE);
    const writeBehindIn = (namespace: typeof users) => (id: number, settings: Record<string, unknown>) =>
      namespace.writeBehind(`user:${id}:settings`, settings, {
        entity: USER_SETTINGS_ENTITY,
        id,
        persistNow: async (value, version) => {
          await persistUserSettings(dataSource, id, value, version);
        },
      });

    const writeBehind = writeBehindIn(users);
    const directWith =
      (source: DataSource): Write =>
      async (id, settings, i) => {
        const outcome = await persistUserSettings(source, id, settings, i + 1);
        return { version: i + 1, mode: outcome };
      };

    // Warm-up of both paths (JIT, pool connections, Lua scripts), then undone: the direct writes
    // are reset on their rows, the queued ones (in a namespace of their own) removed from the queue.
    await writeSlice(newRun('warm-up'), direct32Ids, directWith(dataSource), 0, 1_000);
    await writeSlice(newRun('warm-up'), direct10Ids, directWith(narrow), 0, 1_000);
    await dataSource.query(`UPDATE users SET version = 1, settings = '{}'::jsonb, settings_version = 0 WHERE id = ANY($1)`, [ids]);
    await writeSlice(newRun('warm-up'), afterIds, writeBehindIn(users.namespace('warmup')), 0, 1_000);
    await queue.drain(true);

    // The three kinds of write take turns, a slice at a time, so a busy neighbour slows them alike.
    const direct32 = newRun(`direct UPDATE (persistUserSettings), pool ${IN_FLIGHT}`);
    const direct10 = newRun('direct UPDATE (persistUserSettings), pool 10 (TypeORM default)');
    const after = newRun('writeBehind accepted, no worker running');
    const kinds: Array<[WriteRun, readonly number[], Write]> = [
      [direct32, direct32Ids, directWith(dataSource)],
      [direct10, direct10Ids, directWith(narrow)],
      [after, afterIds, writeBehind],
    ];
    const sliceSize = WRITES / SLICES;
    for (let slice = 0; slice < SLICES; slice++) {
      process.stderr.write(`slice ${slice + 1}/${SLICES}: direct (pool ${IN_FLIGHT}), direct (pool 10), write-behind without a worker\n`);
      const order = slice % 2 === 0 ? kinds : [...kinds].reverse();
      for (const [run, groupIds, write] of order) await writeSlice(run, groupIds, write, slice * sliceSize, (slice + 1) * sliceSize);
    }
    const queuedAfterAccept = await queue.getJobCounts('waiting', 'delayed');

    process.stderr.write('starting the worker\n');
    const spawned = performance.now();
    const workerEnv = { DATABASE_URL: database.url, REDIS_URL: redisUrl, QUEUE_REDIS_URL: redisUrl, CACHE_KEY_PREFIX: KEY_PREFIX };
    workers.push(await WorkerProcess.start(workerEnv));
    const worker = workers[0];
    const startupMs = performance.now() - spawned;
    const afterDrain = await drained(queue, redis, spawned);
    const afterJobs = await workerJobs(worker);

    process.stderr.write('write-behind, worker running\n');
    const during = await writeSlice(newRun('writeBehind accepted, worker running'), duringIds, writeBehind, 0, WRITES);
    const lastAccepted = performance.now();
    const duringDrain = await drained(queue, redis, lastAccepted);
    const duringTotal = await workerJobs(worker);
    const duringJobs = Object.fromEntries(Object.entries(duringTotal).map(([k, v]) => [k, v - (afterJobs[k] ?? 0)]));

    process.stderr.write(`write-behind paced at ${PACED_RATE}/s, worker running\n`);
    const paced = await writePaced(newRun(`writeBehind paced at ${PACED_RATE}/s (open loop), worker running`), pacedIds, writeBehind);
    const pacedLast = performance.now();
    const pacedDrain = await drained(queue, redis, pacedLast);
    const pacedJobs = Object.fromEntries(Object.entries(await workerJobs(worker)).map(([k, v]) => [k, v - (duringTotal[k] ?? 0)]));

    const db = {
      direct32: await databaseWrites(dataSource, direct32Ids, direct32.last),
      direct10: await databaseWrites(dataSource, direct10Ids, direct10.last),
      after: await databaseWrites(dataSource, afterIds, after.last),
      during: await databaseWrites(dataSource, duringIds, during.last),
      paced: await databaseWrites(dataSource, pacedIds, paced.last),
    };

    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const pgVersion = ((await dataSource.query('SHOW server_version')) as Array<{ server_version: string }>)[0]?.server_version;
    const syncCommit = ((await dataSource.query('SHOW synchronous_commit')) as Array<{ synchronous_commit: string }>)[0]
      ?.synchronous_commit;
    console.log(
      `\nnode ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Redis ${redisVersion} ` +
        `(cache and queue on db ${REDIS_DB}), PostgreSQL ${pgVersion} (synchronous_commit ${syncCommit})`,
    );
    console.log(
      `${WRITES.toLocaleString('en-US')} settings writes per row, ${IN_FLIGHT} in flight, write i to user i mod ${USERS} ` +
        `(${WRITES / USERS} writes per user, round robin); the worker is the built app, concurrency ${process.env.WRITE_BEHIND_CONCURRENCY ?? 'default (4)'}\n`,
    );
    console.log(
      '| writes | writes/s | vs baseline | p50 ms | p99 ms | max ms | CPU µs per write (this process) | database writes | saved by coalescing | queue drained | rows at their last write |',
    );
    console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|');
    const base = WRITES / (direct32.ms / 1000);
    const line = (run: WriteRun, d: { writes: number; wrong: number }, drain: string) => {
      const rate = WRITES / (run.ms / 1000);
      const lat = [...run.latencies].sort((a, b) => a - b);
      const saved = WRITES - d.writes;
      const ratio = run === direct32 ? 'baseline' : run === paced ? 'paced' : `${(rate / base).toFixed(2)}×`;
      console.log(
        `| ${run.name} | ${int(rate)} | ${ratio} | ${ms(percentile(lat, 50))} | ${ms(percentile(lat, 99))} | ${ms(lat.at(-1) ?? Number.NaN)} | ${int(run.cpuUs / WRITES)} | ` +
          `${int(d.writes)} | ${int(saved)} (${((100 * saved) / WRITES).toFixed(1)}%) | ${drain} | ${USERS - d.wrong}/${USERS} |`,
      );
    };
    line(direct32, db.direct32, 'n/a');
    line(direct10, db.direct10, 'n/a');
    line(
      after,
      db.after,
      `${(afterDrain.ms / 1000).toFixed(2)} s after the worker was spawned (start-up ${(startupMs / 1000).toFixed(2)} s)`,
    );
    line(during, db.during, `${(duringDrain.ms / 1000).toFixed(2)} s after the last write was accepted`);
    line(paced, db.paced, `${(pacedDrain.ms / 1000).toFixed(2)} s after the last write was accepted`);

    const modes = (run: WriteRun) =>
      Object.entries(run.modes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    console.log(
      `\nwrite outcomes: direct ${modes(direct32)} / ${modes(direct10)}; writeBehind (no worker) ${modes(after)}; writeBehind (worker running) ${modes(during)}; paced ${modes(paced)}`,
    );
    console.log(`jobs queued when the worker started: ${queuedAfterAccept.waiting + queuedAfterAccept.delayed}`);
    const show = (jobs: Record<string, number>) =>
      Object.entries(jobs)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    console.log(
      `worker jobs (its /metrics): worker started after: ${show(afterJobs)}; worker running: ${show(duringJobs)}; paced: ${show(pacedJobs)}`,
    );
    console.log(`failed jobs (cumulative): ${afterDrain.failed} / ${duringDrain.failed} / ${pacedDrain.failed}`);
    const logged = worker.output
      .split('\n')
      .filter((l) => /\b(WARN|ERROR)\b/.test(l))
      .map((l) => stripVTControlCharacters(l).trim());
    if (logged.length) console.log(`\nthe worker logged:\n${logged.slice(0, 10).join('\n')}`);
  } finally {
    for (const worker of workers) await worker.kill('SIGTERM');
    await context?.close();
    await queue.close().catch(() => undefined);
    if (dataSource.isInitialized) await dataSource.destroy();
    if (narrow.isInitialized) await narrow.destroy();
    await database.drop();
    await redis.flushdb();
    await redis.quit();
    process.stderr.write(`stopped the worker, dropped the database, flushed Redis db ${REDIS_DB}\n`);
  }
}

await main();
