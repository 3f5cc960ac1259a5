/**
 * A cache stampede, reproduced: one hot key with a 1 s TTL, read at a fixed 400 requests/s
 * (open loop) by 4 processes that each run their own CacheService and pg Pool, sharing Redis.
 * A miss costs a real 300 ms query (`SELECT pg_sleep(0.3)`). Five protections side by side, in
 * one run, each on a key of its own: (a) none, (b) single-flight, (c) single-flight + Redis lock,
 * (d) lock + XFetch, (e) lock + stale-while-revalidate. Baseline: (a), measured in the same run.
 * Needs the built library (`npm run build`: the processes import dist), Redis at REDIS_URL and
 * PostgreSQL at DATABASE_URL (the defaults of test/support/services.ts). Then
 * `node --import ./bench/register.mjs bench/stampede.bench.ts`.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { CacheEntryOptions } from '@cachekit/cache';
import { IpcProcess } from '../test/support/cache-processes.js';
import { DATABASE_URL, dropPrefix, REDIS_URL } from '../test/support/services.js';

const SCRIPT = resolve('bench/stampede-process.mjs');
const BUILT = resolve('libs/cache/dist/index.js');
const PROCESSES = 4;
const RATE = 400; // requests per second, all processes together
const TTL_MS = 1_000;
const QUERY_MS = 300;
const POOL_SIZE = 10; // per process, like the apps' TypeORM default
/**
 * Steady load per scenario and round. The window opens on a value just loaded, so with one load
 * per expiry the value expires at about 1.0, 2.3, 3.6, 4.9 and 6.2 s: 5 expiries, none near an edge.
 */
const DURATION_MS = 6_500;
const ROUNDS = 2; // round 2 runs the scenarios in reverse order
const GRACE = '5s';
/** a request that took this long waited for a load (a hit takes about a millisecond) */
const WAITED_MS = 100;
/** loader calls closer than this belong to one burst; requests not served fresh closer than this to one expiry */
const CLUSTER_GAP_MS = 200;
const SETTLE_MS = 3_000;

interface Scenario {
  name: string;
  options: CacheEntryOptions;
}

const scenarios: Scenario[] = [
  { name: '(a) no protection', options: { ttl: TTL_MS, singleFlight: false, lock: false } },
  { name: '(b) single-flight', options: { ttl: TTL_MS, lock: false } },
  { name: '(c) single-flight + Redis lock', options: { ttl: TTL_MS } },
  { name: '(d) lock + XFetch (beta 1)', options: { ttl: TTL_MS, xfetch: { beta: 1 } } },
  { name: `(e) lock + stale-while-revalidate (grace ${GRACE})`, options: { ttl: TTL_MS, grace: GRACE } },
];

interface SteadyAnswer {
  requests: Array<[number, number, number]>;
  errors: string[];
  loaderStarts: number[];
  loaderMs: number[];
  maxInFlight: number;
  maxTimerLagMs: number;
}

interface Tally {
  latencies: number[];
  statuses: number[];
  /** per round: requests not served a fresh value at once, by scheduled time (ms from the round's start) */
  notFresh: number[][];
  loaderStarts: number[][];
  loaderMs: number[];
  errors: string[];
  maxInFlight: number;
  maxTimerLagMs: number;
  windowMs: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Groups sorted times into runs whose neighbours are closer than `gap`; answers the run sizes. */
function clusters(sorted: readonly number[], gap: number): number[] {
  const sizes: number[] = [];
  let previous = Number.NEGATIVE_INFINITY;
  for (const t of sorted) {
    if (t - previous >= gap) sizes.push(0);
    sizes[sizes.length - 1]++;
    previous = t;
  }
  return sizes;
}

/** Expiries in `rounds` windows when each costs exactly one load: the first TTL after the priming load, then one per TTL + query. */
function expiriesIn(rounds: number): number {
  return rounds * (Math.floor((DURATION_MS - TTL_MS) / (TTL_MS + QUERY_MS)) + 1);
}

function ms(value: number): string {
  if (Number.isNaN(value)) return 'n/a';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** Warns when the library's sources changed after dist was built: the processes would run old code. */
function staleBuildWarning(): string | undefined {
  const built = statSync(BUILT).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !path.endsWith('.spec.ts') && statSync(path).mtimeMs > built) newer.push(path);
    }
  };
  walk(resolve('libs/cache/src'));
  return newer.length ? `WARNING: ${newer.length} source file(s) newer than ${BUILT} (e.g. ${newer[0]}); run \`npm run build\`` : undefined;
}

async function runScenario(processes: readonly IpcProcess[], scenario: Scenario, key: string, tally: Tally): Promise<void> {
  await processes[0].send('prime', { key, options: scenario.options, queryMs: QUERY_MS });
  const intervalMs = (1000 * PROCESSES) / RATE;
  const startAt = Date.now() + 50;
  const answers = await Promise.all(
    processes.map((p, i) =>
      p.send<SteadyAnswer>('steady', {
        key,
        options: scenario.options,
        queryMs: QUERY_MS,
        startAt,
        durationMs: DURATION_MS,
        intervalMs,
        phaseMs: (i * intervalMs) / PROCESSES,
        settleMs: SETTLE_MS,
      }),
    ),
  );
  const starts: number[] = [];
  const notFresh: number[] = [];
  for (const answer of answers) {
    for (const [scheduled, latency, status] of answer.requests) {
      tally.latencies.push(latency);
      tally.statuses.push(status);
      if (status !== 0 || latency >= WAITED_MS) notFresh.push(scheduled);
    }
    // Loads that started after the window (a straggler's background refresh) are not counted.
    starts.push(...answer.loaderStarts.filter((t) => t < DURATION_MS));
    tally.loaderMs.push(...answer.loaderMs);
    tally.errors.push(...answer.errors);
    tally.maxInFlight = Math.max(tally.maxInFlight, answer.maxInFlight);
    tally.maxTimerLagMs = Math.max(tally.maxTimerLagMs, answer.maxTimerLagMs);
  }
  tally.loaderStarts.push(starts.sort((x, y) => x - y));
  tally.notFresh.push(notFresh.sort((x, y) => x - y));
  tally.windowMs += DURATION_MS;
}

function row(scenario: Scenario, tally: Tally, baselinePerExpiry: number | undefined): { line: string; perExpiry: number } {
  const latencies = [...tally.latencies].sort((x, y) => x - y);
  const loads = tally.loaderStarts.reduce((sum, starts) => sum + starts.length, 0);
  const nominalExpiries = expiriesIn(tally.windowMs / DURATION_MS);
  const perExpiry = loads / nominalExpiries;
  // Expiry events requests actually ran into, counted per round (times restart at 0).
  const seen = tally.notFresh.reduce((sum, times) => sum + clusters(times, CLUSTER_GAP_MS).length, 0);
  const bursts = tally.loaderStarts.flatMap((starts) => clusters(starts, CLUSTER_GAP_MS));
  const waited = tally.latencies.filter((l) => l >= WAITED_MS).length;
  const count = (s: number) => tally.statuses.filter((x) => x === s).length;
  const ratio =
    baselinePerExpiry === undefined
      ? 'baseline'
      : `${(perExpiry / baselinePerExpiry).toFixed(3)}× (1/${Math.round(baselinePerExpiry / perExpiry)})`;
  const cells = [
    scenario.name,
    tally.latencies.length.toLocaleString('en-US'),
    loads.toLocaleString('en-US'),
    perExpiry.toFixed(2),
    ratio,
    String(Math.max(0, ...bursts)),
    String(seen),
    ms(percentile(latencies, 50)),
    ms(percentile(latencies, 99)),
    ms(latencies.at(-1) ?? Number.NaN),
    `${waited.toLocaleString('en-US')} (${((100 * waited) / latencies.length).toFixed(1)}%)`,
    `${count(0)} / ${count(1)} / ${count(2)} / ${count(-1)}`,
  ];
  return { line: `| ${cells.join(' | ')} |`, perExpiry };
}

async function main(): Promise<void> {
  const warning = staleBuildWarning();
  if (warning) process.stderr.write(`${warning}\n`);
  const prefix = `bench:stampede:${randomBytes(4).toString('hex')}:`;
  const processes: IpcProcess[] = [];
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  const sql = new pg.Client({ connectionString: DATABASE_URL });
  await sql.connect();
  const started = performance.now();
  try {
    process.stderr.write(`starting ${PROCESSES} cache processes\n`);
    for (let i = 0; i < PROCESSES; i++) {
      processes.push(await IpcProcess.start(SCRIPT, { REDIS_URL, CACHE_KEY_PREFIX: prefix, DATABASE_URL, POOL_SIZE: String(POOL_SIZE) }));
    }
    const tallies = scenarios.map((): Tally => ({
      latencies: [],
      statuses: [],
      notFresh: [],
      loaderStarts: [],
      loaderMs: [],
      errors: [],
      maxInFlight: 0,
      maxTimerLagMs: 0,
      windowMs: 0,
    }));
    for (let round = 0; round < ROUNDS; round++) {
      const order = scenarios.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        process.stderr.write(`round ${round + 1}/${ROUNDS}: ${scenarios[i].name}\n`);
        await runScenario(processes, scenarios[i], `hot:${i}:${round}`, tallies[i]);
      }
    }

    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const pgVersion = (await sql.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown';
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const nominal = expiriesIn(ROUNDS);
    console.log(`\nnode ${process.version}, ${os.availableParallelism()} cores (${cpu}), Redis ${redisVersion}, PostgreSQL ${pgVersion}`);
    if (warning) console.log(warning);
    console.log(
      `${PROCESSES} processes, each with its own CacheService (L1 + Redis, bus on) and a pg Pool of ${POOL_SIZE}; one hot key per scenario, ` +
        `TTL ${TTL_MS} ms; ${RATE} requests/s in all, open loop (every ${(1000 * PROCESSES) / RATE} ms per process, phases staggered); ` +
        `a load is \`SELECT pg_sleep(${QUERY_MS / 1000})\`; ${ROUNDS} rounds of ${DURATION_MS / 1000} s per scenario (round 2 in reverse order)`,
    );
    console.log(
      `TTL expiries in the window: ${nominal} (${ROUNDS} × ${nominal / ROUNDS}: the window opens on a fresh value, then ` +
        `one expiry per TTL ${TTL_MS} ms + query ${QUERY_MS} ms, as one load per expiry gives); ` +
        `latency counts from each request's scheduled time\n`,
    );
    console.log(
      '| scenario | requests | database loads | loads per expiry | vs (a) | largest load burst | expiries requests ran into | p50 ms | p99 ms | max ms | ' +
        `waited ≥ ${WAITED_MS} ms for a load | HIT / MISS / STALE / error |`,
    );
    console.log('|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|');
    let baseline: number | undefined;
    for (const [i, scenario] of scenarios.entries()) {
      const { line, perExpiry } = row(scenario, tallies[i], baseline);
      baseline ??= perExpiry;
      console.log(line);
    }
    const loaderMs = tallies.map((t) => [...t.loaderMs].sort((x, y) => x - y));
    console.log(
      `\nloader call duration (pool wait + query) p50 / max ms: ${scenarios
        .map((s, i) => `${s.name.slice(0, 3)} ${ms(percentile(loaderMs[i], 50))} / ${ms(loaderMs[i].at(-1) ?? Number.NaN)}`)
        .join('; ')}`,
    );
    const histogram = (sizes: number[]) =>
      [...sizes.reduce((m, n) => m.set(n, (m.get(n) ?? 0) + 1), new Map<number, number>())]
        .sort((x, y) => x[0] - y[0])
        .map(([size, times]) => `${size}×${times}`)
        .join(' ');
    console.log(
      `load bursts (loads starting < ${CLUSTER_GAP_MS} ms apart), size×count: ${scenarios
        .map((s, i) => `${s.name.slice(0, 3)} ${histogram(tallies[i].loaderStarts.flatMap((starts) => clusters(starts, CLUSTER_GAP_MS)))}`)
        .join('; ')}`,
    );
    console.log(
      `most loader calls in flight in one process: ${scenarios.map((s, i) => `${s.name.slice(0, 3)} ${tallies[i].maxInFlight}`).join('; ')}`,
    );
    console.log(`latest timer (scheduled → sent) in any process: ${ms(Math.max(...tallies.map((t) => t.maxTimerLagMs)))} ms`);
    for (const [i, tally] of tallies.entries()) {
      if (tally.errors.length) console.log(`errors in ${scenarios[i].name}: ${[...new Set(tally.errors)].slice(0, 3).join(' | ')}`);
    }
    process.stderr.write(`run took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  } finally {
    await Promise.all(processes.map((p) => p.stop('close')));
    await dropPrefix(redis, prefix);
    await redis.quit();
    await sql.end();
    process.stderr.write(`stopped the processes and deleted the keys under ${prefix}\n`);
  }
}

await main();
