/**
 * HTTP throughput of a cached route against the same route uncached, measured in the same run:
 * one Nest app with one route `GET /users/:id`, on Express and on Fastify, in four variants:
 * bare (the handler returns the user: the baseline), pass-through (the same behind an interceptor
 * that does nothing: the floor of any cache built as a Nest interceptor), cachekit (`@Cacheable`,
 * hits from L1) and `@nestjs/cache-manager` (its `CacheInterceptor`, in-memory store). Each server
 * runs in a child process (bench/http-server.ts) and is loaded by autocannon from this one, on
 * 127.0.0.1, only once every request is a hit. Rounds are interleaved: each round runs every case once.
 * Run with `node --import ./bench/register.mjs bench/http.bench.ts`; needs Redis at REDIS_URL.
 * `BENCH_ROUNDS` and `BENCH_SECONDS` shorten a run while it is being worked on. `BENCH_BODY_USERS=N`
 * makes the route answer a page of N users instead of one (the servers read it too): the larger the
 * body, the more a hit saves the bare handler (building and serializing it) against what Nest's
 * interceptor machinery costs every request whatever its size.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Redis } from 'ioredis';
import { dropPrefix, freePort, REDIS_URL } from '../test/support/services.js';
import { check, positiveFromEnv, ratio, type Result } from './harness.js';
import type { AdapterName, ServerMessage, Variant } from './http-server.js';

const ROUNDS = positiveFromEnv('BENCH_ROUNDS', 5);
const DURATION_S = positiveFromEnv('BENCH_SECONDS', 5);
/** a load before the measured one, so that the server's hot paths are compiled */
const WARMUP_S = 2;
const CONNECTIONS = 32;
const PIPELINING = 1;
const ADAPTERS: readonly AdapterName[] = ['express', 'fastify'];
/** the first is the baseline of its adapter */
const VARIANTS: readonly Variant[] = ['bare', 'pass-through', 'cachekit', 'cache-manager'];
/** the variants whose handler runs on every request */
const UNCACHED: readonly Variant[] = ['bare', 'pass-through'];
const PATH = '/users/1';
const BODY_USERS = positiveFromEnv('BENCH_BODY_USERS', 1);
const KEY_PREFIX = `bench:http:${randomBytes(4).toString('hex')}:`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
/**
 * The load generator and the server take both cores of a small machine, so other processes
 * distort a sample: a case starts once the rest of the machine uses at most `QUIET_SHARE` of the
 * CPU (or after `QUIET_WAIT_MS`), and a sample during which it used more is taken again, up to
 * `ATTEMPTS` times (the least disturbed one is kept, and noted).
 */
const QUIET_SHARE = 0.2;
const QUIET_WAIT_MS = 30_000;
const ATTEMPTS = 3;

interface AutocannonResult {
  /** seconds */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}

/** autocannon's run: an event emitter that is also the promise of its result */
interface AutocannonRun extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): this;
}

type Autocannon = (options: { url: string; connections: number; pipelining: number; duration: number }) => AutocannonRun;

// autocannon is CommonJS and ships no types.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Case {
  adapter: AdapterName;
  variant: Variant;
  name: string;
}

interface Load {
  responses: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
}

interface Sample {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** the server's CPU time (user + system) per response */
  cpuMicrosPerRequest: number;
  /** the server's CPU time over the load's wall time: near 1, the server is the limit; below, the load generator */
  serverBusy: number;
  /** the share of the machine's CPU that other processes used during the sample */
  othersShare: number;
}

interface Probe {
  status: number;
  xCache: string | null;
  contentType: string | null;
  body: string;
}

const children = new Set<ChildProcess>();

/** A server of bench/http-server.ts in a child process, answering over IPC. */
class ServerProcess {
  private constructor(
    readonly name: string,
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  static async start({ adapter, variant, name }: Case): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', './bench/register.mjs', 'bench/http-server.ts', adapter, variant, String(port)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_KEY_PREFIX: KEY_PREFIX },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const server = new ServerProcess(name, `http://127.0.0.1:${port}${PATH}`, child);
    await server.reply('listening', START_TIMEOUT_MS);
    return server;
  }

  /** How many times the handler has run in this server, and the CPU time the server used so far. */
  async stats(): Promise<Extract<ServerMessage, { type: 'stats' }>> {
    const answer = this.reply('stats', 5_000);
    this.child.send({ type: 'stats' });
    const message = await answer;
    check(message.type === 'stats', `${this.name}: unexpected answer ${JSON.stringify(message)}`);
    return message;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private reply(type: ServerMessage['type'], timeoutMs: number): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const settle = (error?: Error, message?: ServerMessage) => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolve(message!);
      };
      const onMessage = (message: ServerMessage) => {
        if (message.type === type) settle(undefined, message);
      };
      const onExit = (code: number | null, signal: string | null) =>
        settle(new Error(`bench: ${this.name} exited (${signal ?? `code ${code}`}) before answering "${type}"`));
      const timer = setTimeout(() => settle(new Error(`bench: ${this.name} did not answer "${type}" in ${timeoutMs} ms`)), timeoutMs);
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
  }
}

/** CPU time of the whole machine so far, all cores, in microseconds: busy and in all. */
function machineCpu(): { busy: number; total: number } {
  let busy = 0;
  let idle = 0;
  for (const { times } of os.cpus()) {
    busy += times.user + times.nice + times.sys + times.irq;
    idle += times.idle;
  }
  return { busy: busy * 1000, total: (busy + idle) * 1000 };
}

/** The share of the machine's CPU used between `since` and now by processes other than this one and `serverMicros`. */
function othersShare(since: { machine: { busy: number; total: number }; self: NodeJS.CpuUsage }, serverMicros = 0): number {
  const machine = machineCpu();
  const self = process.cpuUsage(since.self);
  const total = machine.total - since.machine.total;
  const others = machine.busy - since.machine.busy - self.user - self.system - serverMicros;
  return total > 0 ? Math.max(0, others / total) : 0;
}

const cpuMark = () => ({ machine: machineCpu(), self: process.cpuUsage() });

/** Waits until other processes use at most `QUIET_SHARE` of the CPU, or `QUIET_WAIT_MS`. */
async function quietMachine(): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < QUIET_WAIT_MS) {
    const mark = cpuMark();
    await sleep(500);
    if (othersShare(mark) <= QUIET_SHARE) return;
  }
}

async function probe(url: string): Promise<Probe> {
  const response = await fetch(url);
  return {
    status: response.status,
    xCache: response.headers.get('x-cache'),
    contentType: response.headers.get('content-type'),
    body: await response.text(),
  };
}

/** A load of `seconds` at `CONNECTIONS` connections; every response must be a 200. */
async function load(server: ServerProcess, seconds: number): Promise<Load> {
  // autocannon's own percentiles are whole milliseconds; keep each response time as measured.
  const times: number[] = [];
  const run = autocannon({ url: server.url, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds });
  run.on('response', (_client, _status, _bytes, responseTimeMs) => times.push(responseTimeMs));
  const result = await run;
  check(
    result.errors === 0 && result.timeouts === 0 && result.non2xx === 0,
    `${server.name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} responses other than 2xx`,
  );
  check(result['2xx'] > 0, `${server.name}: no response at all`);
  times.sort((a, b) => a - b);
  return { responses: result['2xx'], seconds: result.duration, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99) };
}

/**
 * Starts the case's server, checks its answers (a miss then hits for the cached variants, the
 * bare JSON body), warms it up, measures it and stops it. `reference` is the bare body, per adapter.
 */
async function sampleCase(item: Case, reference: Map<AdapterName, Probe>, notes: Set<string>, redis: Redis): Promise<Sample> {
  await quietMachine();
  process.stderr.write(`${item.name}: `);
  const server = await ServerProcess.start(item);
  try {
    const probes = [await probe(server.url), await probe(server.url), await probe(server.url)];
    for (const [i, answer] of probes.entries()) {
      check(answer.status === 200, `${item.name}: GET ${PATH} answered ${answer.status}: ${answer.body}`);
      const expected = UNCACHED.includes(item.variant) ? null : i === 0 ? 'MISS' : 'HIT';
      check(answer.xCache === expected, `${item.name}: request ${i + 1} has X-Cache ${answer.xCache}, expected ${expected}`);
    }
    if (item.variant === 'bare' && !reference.has(item.adapter)) reference.set(item.adapter, probes[0]);
    const bare = reference.get(item.adapter);
    check(bare, `${item.name}: measured before its baseline`);
    for (const [i, answer] of probes.entries()) {
      const json: unknown = JSON.parse(answer.body);
      check(
        isDeepStrictEqual(json, JSON.parse(bare.body)),
        `${item.name}: request ${i + 1} answered ${answer.body}, the bare handler ${bare.body}`,
      );
      if (answer.body !== bare.body) notes.add(`${item.name}: the same JSON as the bare handler's, but not the same bytes`);
      if (answer.contentType !== bare.contentType) {
        notes.add(
          `${item.name}: ${answer.xCache ?? 'a response'} has Content-Type ${answer.contentType}, the bare handler ${bare.contentType}`,
        );
      }
    }

    await load(server, WARMUP_S);
    const before = await server.stats();
    const mark = cpuMark();
    const measured = await load(server, DURATION_S);
    const after = await server.stats();
    const cpuMicros = after.cpuMicros - before.cpuMicros;
    const others = othersShare(mark, cpuMicros);
    const calls = after.calls - before.calls;
    if (UNCACHED.includes(item.variant))
      check(calls >= measured.responses, `${item.name}: ${measured.responses} responses, ${calls} handler calls`);
    // Only hits were measured: the handler ran for the first request, before the warm-up, and never since.
    else
      check(before.calls === 1 && calls === 0, `${item.name}: the handler ran ${before.calls} times before and ${calls} while measuring`);
    if (before.hits && after.hits) {
      const l1 = after.hits.l1 - before.hits.l1;
      const l2 = after.hits.l2 - before.hits.l2;
      check(l1 + l2 >= measured.responses, `${item.name}: ${measured.responses} responses but ${l1 + l2} cache hits`);
      // L1 keeps an entry at most `l1.maxTtl` (10 s): a refresh from L2 now and then is expected, more is not an L1 hit path.
      check(l2 <= l1 / 100, `${item.name}: ${l2} of ${l1 + l2} hits came from L2`);
    }
    const sample: Sample = {
      reqPerSec: measured.responses / measured.seconds,
      p50Ms: measured.p50Ms,
      p99Ms: measured.p99Ms,
      cpuMicrosPerRequest: cpuMicros / measured.responses,
      serverBusy: cpuMicros / 1e6 / measured.seconds,
      othersShare: others,
    };
    process.stderr.write(
      `${Math.round(sample.reqPerSec).toLocaleString('en-US')} req/s, p99 ${sample.p99Ms.toFixed(2)} ms, ` +
        `${Math.round(sample.cpuMicrosPerRequest)} µs of server CPU per request, server busy ${Math.round(sample.serverBusy * 100)}%, ` +
        `other processes ${Math.round(others * 100)}% of the machine\n`,
    );
    return sample;
  } finally {
    await server.stop();
    // The next round of this case starts from a cold cache too.
    if (item.variant === 'cachekit') await dropPrefix(redis, KEY_PREFIX);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Per round, `value` of the case over `value` of its baseline in the same round: median (min–max). */
function pairedRatio(item: readonly Sample[], baseline: readonly Sample[], value: (sample: Sample) => number): string {
  const ratios = item.map((sample, round) => value(sample) / value(baseline[round]));
  const format = (r: number) => r.toFixed(2);
  return `${format(median(ratios))}× (${format(Math.min(...ratios))}–${format(Math.max(...ratios))})`;
}

function table(cases: readonly Case[], samples: ReadonlyMap<Case, Sample[]>): string {
  const rates = new Map<Case, Result>();
  const rows = cases.map((item) => {
    const caseSamples = samples.get(item)!;
    const bare = cases.find((c) => c.adapter === item.adapter)!;
    const bareSamples = samples.get(bare)!;
    const perSecond = caseSamples.map((s) => s.reqPerSec);
    const rate: Result = {
      name: item.name,
      opsPerSec: median(perSecond),
      spread: (Math.max(...perSecond) - Math.min(...perSecond)) / median(perSecond),
      baseline: item === bare ? undefined : rates.get(bare),
    };
    rates.set(item, rate);
    return [
      item.name,
      Math.round(rate.opsPerSec).toLocaleString('en-US'),
      `${Math.round(rate.spread * 100)}%`,
      ratio(rate),
      item === bare ? 'baseline' : pairedRatio(caseSamples, bareSamples, (s) => s.reqPerSec),
      median(caseSamples.map((s) => s.p50Ms)).toFixed(2),
      median(caseSamples.map((s) => s.p99Ms)).toFixed(2),
      Math.round(median(caseSamples.map((s) => s.cpuMicrosPerRequest))).toLocaleString('en-US'),
      item === bare ? 'baseline' : pairedRatio(caseSamples, bareSamples, (s) => s.cpuMicrosPerRequest),
      `${Math.round(median(caseSamples.map((s) => s.serverBusy)) * 100)}%`,
    ].join(' | ');
  });
  const head = [
    '| case | req/s | sample range | req/s vs bare | req/s vs bare, per round | p50 ms | p99 ms | server CPU µs/req | CPU/req vs bare, per round | server busy |',
    '|---|---:|---:|---|---|---:|---:|---:|---|---:|',
  ];
  return [...head, ...rows.map((row) => `| ${row} |`)].join('\n');
}

/** The packages measured, as installed. */
function versions(): string {
  return ['express', 'fastify', '@nestjs/core', '@nestjs/cache-manager', 'cache-manager', 'autocannon']
    .map((name) => {
      const manifest = JSON.parse(readFileSync(`${ROOT}/node_modules/${name}/package.json`, 'utf8')) as { version: string };
      return `${name} ${manifest.version}`;
    })
    .join(', ');
}

/** The library's sources: a digest of their content, and the commit they come from if this is a git checkout. */
function libraryState(): { digest: string; text: string } {
  const sources = `${ROOT}/libs/cache/src`;
  const digest = createHash('sha256');
  for (const file of readdirSync(sources, { recursive: true, encoding: 'utf8' }).sort()) {
    const path = `${sources}/${file}`;
    if (statSync(path).isFile()) digest.update(`${file}\0`).update(readFileSync(path)).update('\0');
  }
  let origin = 'not a git checkout';
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' }).trim();
    const dirty = git('status', '--porcelain', '--', 'libs/cache/src') !== '';
    origin = `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes' : ''}`;
  } catch {
    // a copy without .git: the digest alone says which sources ran
  }
  const hex = digest.digest('hex').slice(0, 12);
  return { digest: hex, text: `@cachekit/cache sources ${hex} (${origin})` };
}

/** Last resort: no server outlives the bench. */
function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

async function main(): Promise<void> {
  // No retries: without Redis the bench should fail at once, not wait for it.
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  process.on('exit', killChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killChildren();
      void dropPrefix(redis, KEY_PREFIX).finally(() => process.exit(128 + os.constants.signals[signal]));
    });
  }
  const cases: Case[] = ADAPTERS.flatMap((adapter) => VARIANTS.map((variant) => ({ adapter, variant, name: `${adapter} ${variant}` })));
  const samples = new Map<Case, Sample[]>(cases.map((item) => [item, []]));
  const reference = new Map<AdapterName, Probe>();
  const notes = new Set<string>();
  // The servers load the library's sources at each start: a change during the run would mix two versions.
  const library = libraryState();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`round ${round} of ${ROUNDS}\n`);
      for (const item of cases) {
        let kept: Sample | undefined;
        for (let attempt = 1; attempt <= ATTEMPTS && !(kept && kept.othersShare <= QUIET_SHARE); attempt++) {
          const sample = await sampleCase(item, reference, notes, redis);
          if (!kept || sample.othersShare < kept.othersShare) kept = sample;
        }
        samples.get(item)!.push(kept!);
      }
    }
    const [express, fastify] = ADAPTERS.map((adapter) => reference.get(adapter)!);
    check(isDeepStrictEqual(JSON.parse(express.body), JSON.parse(fastify.body)), `Express and Fastify answer different JSON`);

    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    console.log(
      `\nnode ${process.version}, ${os.availableParallelism()} cores (${cpu}), Redis ${redisVersion}; ${new Date().toISOString()}`,
    );
    console.log(`${versions()}, ${library.text}`);
    const end = libraryState();
    if (end.digest !== library.digest)
      notes.add(`the library's sources changed during the run: ${library.text} at the start, ${end.text} at the end`);
    console.log(
      `GET ${PATH}, ${BODY_USERS === 1 ? 'one user' : `a page of ${BODY_USERS} users`} (${Buffer.byteLength(express.body)} bytes of JSON); autocannon in this process, ${CONNECTIONS} connections, ` +
        `pipelining ${PIPELINING}, ${DURATION_S} s per sample after a ${WARMUP_S} s warm-up, the server in a child process; ` +
        `median of ${ROUNDS} interleaved rounds; "per round": the case over its bare handler in the same round, median (min–max). ` +
        `Server CPU: user + system time of the server process per response; ` +
        `server busy: that time over the wall time (near 100%, the server is the limit; well below, the load generator is). ` +
        `A sample during which other processes used more than ${QUIET_SHARE * 100}% of the machine's CPU is taken again ` +
        `(at most ${ATTEMPTS} attempts, the least disturbed kept)\n`,
    );
    console.log(table(cases, samples));
    const disturbed = cases.flatMap((item) => {
      const shares = samples
        .get(item)!
        .map((s) => s.othersShare)
        .filter((share) => share > QUIET_SHARE);
      return shares.length ? [`${item.name} ${shares.length} (up to ${Math.round(Math.max(...shares) * 100)}%)`] : [];
    });
    if (disturbed.length) {
      notes.add(
        `samples kept although other processes used more than ${QUIET_SHARE * 100}% of the machine's CPU in each of ${ATTEMPTS} ` +
          `attempts (of ${ROUNDS}): ${disturbed.join(', ')}`,
      );
    }
    if (notes.size) console.log(`\n${[...notes].map((note) => `- ${note}`).join('\n')}`);
  } finally {
    killChildren();
    await dropPrefix(redis, KEY_PREFIX);
    process.stderr.write(`deleted the keys under ${KEY_PREFIX}\n`);
    await redis.quit();
  }
}

await main();
