/**
 * CPU instructions per HTTP request of the server, counted by callgrind: the cases of
 * bench/http.bench.ts (bare handler, pass-through interceptor, cachekit L1 hit, cache-manager hit;
 * Express and Fastify) without the VM's noise (bench:http's samples move by 30 to 80 % here), and
 * `constant-hit`: an interceptor that answers a body built at start-up without calling the handler,
 * the least a hit costs any cache built as a Nest interceptor.
 * Each server (`bench/http-instructions-case.mjs`, `node --single-threaded`) runs under callgrind
 * twice with its instrumentation off until a warm-up of WARMUP requests is over, then BENCH_REQUESTS
 * and 3 x BENCH_REQUESTS requests, all on one keep-alive connection, one at a time, from this
 * process: the difference of the two counts over 2 x BENCH_REQUESTS is the server's cost of one
 * request, start-up, warm-up and shutdown cancelled out. Only the server's user-space instructions
 * are counted (not the kernel's socket work, which is the same for every case), and a count is not a
 * time. Issue 13's target 3 is on requests per second (bench:http). `BENCH_BODY_USERS=N`: the route
 * answers a page of N users, as in bench:http.
 * Needs valgrind, the built package (`npm run build`) and Redis at REDIS_URL; takes several minutes.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../test/support/services.js';
import { check, positiveFromEnv } from './harness.js';

const REQUESTS = positiveFromEnv('BENCH_REQUESTS', 1_000);
const BODY_USERS = positiveFromEnv('BENCH_BODY_USERS', 1);
/** requests before the count starts: the server's hot paths are compiled by then */
const WARMUP = 6_000;
const CASE_SCRIPT = 'bench/http-instructions-case.mjs';
/** `BENCH_ADAPTERS=fastify` (or `express`) measures one adapter only */
const ADAPTERS = (['express', 'fastify'] as const).filter((name) => (process.env.BENCH_ADAPTERS ?? name).split(',').includes(name));
/** the first is the baseline */
const VARIANTS = ['bare', 'pass-through', 'constant-hit', 'cachekit', 'cache-manager'] as const;
/** the variants that mark their answers `X-Cache: HIT` */
const ANSWER_HITS: readonly string[] = ['constant-hit', 'cachekit'];
const START_TIMEOUT_MS = 10 * 60_000;

const run = promisify(execFile);

/** `count` GET requests to `url`, one at a time on `agent`'s one connection; each must be a 200. The last one's X-Cache. */
async function requests(url: string, agent: http.Agent, count: number): Promise<string | undefined> {
  let xCache: string | undefined;
  for (let i = 0; i < count; i++) {
    xCache = await new Promise<string | undefined>((resolve, reject) => {
      http
        .get(url, { agent }, (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode === 200) resolve(response.headers['x-cache'] as string | undefined);
            else reject(new Error(`${url} answered ${response.statusCode}`));
          });
        })
        .on('error', reject);
    });
  }
  return xCache;
}

async function listening(child: ChildProcess, name: string): Promise<void> {
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not listening after ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('listening')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve();
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited (code ${code}) before listening:\n${output}`));
    });
  });
}

/** The server's instructions over `measured` requests after the warm-up, with what its start and stop cost. */
async function instructions(adapter: string, variant: string, measured: number, dir: string): Promise<number> {
  const name = `${adapter} ${variant}`;
  const port = await freePort();
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(dir, 'callgrind.%p')}`,
      process.execPath,
      '--single-threaded',
      CASE_SCRIPT,
      adapter,
      variant,
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await listening(child, name);
    const url = `http://127.0.0.1:${port}/users/1`;
    const warm = await requests(url, agent, WARMUP);
    check(!ANSWER_HITS.includes(variant) || warm === 'HIT', `${name}: X-Cache ${warm} after the warm-up, expected HIT`);
    await run('callgrind_control', ['--instr=on', String(child.pid)]);
    const last = await requests(url, agent, measured);
    check(!ANSWER_HITS.includes(variant) || last === 'HIT', `${name}: X-Cache ${last} at the end, expected HIT`);
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await exited;
  }
  const collected = /Collected : (\d+)/.exec(stderr)?.[1];
  check(collected !== undefined, `no instruction count from callgrind for ${name}:\n${stderr.slice(-2000)}`);
  return Number(collected);
}

async function main(): Promise<void> {
  check(spawnSync('valgrind', ['--version']).status === 0, 'valgrind is not installed (Debian: apt-get install valgrind)');
  check(existsSync('libs/cache/dist/index.js'), 'the package is not built: run `npm run build` first');
  check(ADAPTERS.length > 0, `BENCH_ADAPTERS names no adapter: ${process.env.BENCH_ADAPTERS}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'cachekit-callgrind-http-'));
  try {
    const cases = ADAPTERS.flatMap((adapter) => VARIANTS.map((variant) => ({ adapter, variant })));
    const perRequest = new Map<string, number>();
    // One server at a time: the client in this process and the server each take a core.
    for (const { adapter, variant } of cases) {
      const [short, long] = [await instructions(adapter, variant, REQUESTS, dir), await instructions(adapter, variant, 3 * REQUESTS, dir)];
      const cost = (long - short) / (2 * REQUESTS);
      check(cost > 0, `${adapter} ${variant}: the longer run counted no more instructions than the shorter one`);
      perRequest.set(`${adapter} ${variant}`, cost);
      process.stderr.write(`${adapter} ${variant}: ${Math.round(cost).toLocaleString('en-US')} instructions per request\n`);
    }
    console.log(
      `\nnode ${process.version}, valgrind callgrind, node --single-threaded; GET /users/1 ` +
        `(${BODY_USERS === 1 ? 'one small user' : `a page of ${BODY_USERS} users`}), ` +
        `${2 * REQUESTS} requests measured per case (${REQUESTS} and ${3 * REQUESTS} after ${WARMUP} on the same connection), one at a time`,
    );
    for (const adapter of ADAPTERS) {
      const baseline = perRequest.get(`${adapter} ${VARIANTS[0]}`)!;
      const rows = VARIANTS.map((variant) => {
        const cost = perRequest.get(`${adapter} ${variant}`)!;
        const ratio = variant === VARIANTS[0] ? 'baseline' : `${(baseline / cost).toFixed(2)}× the requests per instruction`;
        return `| ${adapter} ${variant} | ${Math.round(cost).toLocaleString('en-US')} | ${ratio} |`;
      });
      console.log(`\n| case | server instructions / request | vs ${adapter} bare |\n|---|---:|---|\n${rows.join('\n')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
