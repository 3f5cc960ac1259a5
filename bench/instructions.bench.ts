/**
 * CPU instructions per call, counted by callgrind: the hit cases of
 * bench/cache-throughput.bench.ts without the noise of a shared VM (its ops/s samples move by up
 * to 2x between runs here; callgrind counts the same instructions for the same run whatever else
 * the machine does). Each case runs in a process of its own (`bench/instructions-case.mjs`, with
 * `node --single-threaded`, so that no background compiler or GC thread adds a varying count),
 * twice, with BENCH_OPS and 3 x BENCH_OPS calls after the same warm-up: the difference of the two
 * counts over 2 x BENCH_OPS is the cost of one call, start-up and warm-up cancelled out.
 * No I/O while measured: L1 hits, and the JavaScript of an L2 hit, with the cache's Redis client
 * answering at once (a real L2 hit's count is not repeatable: it moves with how Redis replies
 * happen to arrive, which decides how reads batch; and callgrind sees neither Redis nor the
 * kernel). A count is not a time either: a clock read is a few instructions but about 65 ns on this
 * VM, and memory stalls cost time, not instructions. Issue 13's targets are on time
 * (bench:throughput).
 * Needs valgrind, the built package (`npm run build`) and Redis at REDIS_URL; takes several minutes.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { check, CONCURRENCY, positiveFromEnv } from './harness.js';

const OPS = positiveFromEnv('BENCH_OPS', 64_000);
const CASE_SCRIPT = 'bench/instructions-case.mjs';

const GROUPS: ReadonlyArray<{ title: string; cases: readonly string[] }> = [
  {
    title: 'L1 hit, 64 callers in flight (one key each)',
    cases: [
      'lru-cache get',
      'CacheService.getOrSet, L1 hit (copies)',
      "CacheService.getOrSet, L1 hit, l1 { values: 'frozen' }",
      'cache-manager wrap, in-memory Keyv',
    ],
  },
  {
    title: "L2 hit's JavaScript, 64 callers in flight: the cache's Redis client answers at once",
    cases: ['JSON.parse of the stored text, answered at once', 'CacheService.getOrSet, L2 hit (l1: false), Redis answered at once'],
  },
];

const run = promisify(execFile);

/** Instructions callgrind counted for one process of `name` making `ops` calls after its warm-up. */
async function instructions(name: string, ops: number, dir: string): Promise<number> {
  const { stderr } = await run(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${join(dir, 'callgrind.%p')}`,
      process.execPath,
      '--single-threaded',
      CASE_SCRIPT,
      name,
      String(ops),
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const collected = /Collected : (\d+)/.exec(stderr)?.[1];
  check(collected !== undefined, `no instruction count from callgrind for "${name}":\n${stderr.slice(-2000)}`);
  return Number(collected);
}

/** Runs `tasks` with at most `limit` at a time (one callgrind process per core). */
async function inTurn<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}

async function main(): Promise<void> {
  check(spawnSync('valgrind', ['--version']).status === 0, 'valgrind is not installed (Debian: apt-get install valgrind)');
  check(existsSync('libs/cache/dist/index.js'), 'the package is not built: run `npm run build` first');
  // Each caller makes the same number of calls: the two runs must make exactly OPS and 3 x OPS.
  check(OPS % CONCURRENCY === 0, `BENCH_OPS must be a multiple of ${CONCURRENCY}; got ${OPS}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'cachekit-callgrind-'));
  try {
    const names = GROUPS.flatMap((group) => group.cases);
    const runs = names.flatMap((name) => [OPS, 3 * OPS].map((ops) => ({ name, ops })));
    process.stderr.write(`${runs.length} callgrind runs, ${os.availableParallelism()} at a time\n`);
    const counts = await inTurn(
      runs.map(({ name, ops }) => async () => {
        const count = await instructions(name, ops, dir);
        process.stderr.write(`${name}, ${ops} calls: ${count.toLocaleString('en-US')} instructions\n`);
        return count;
      }),
      os.availableParallelism(),
    );
    const perCall = new Map(names.map((name, i) => [name, (counts[2 * i + 1] - counts[2 * i]) / (2 * OPS)]));
    console.log(
      `\nnode ${process.version}, valgrind callgrind, node --single-threaded; ${2 * OPS} calls measured per case (${OPS} and ${3 * OPS} after the same warm-up)`,
    );
    for (const { title, cases } of GROUPS) {
      const baseline = perCall.get(cases[0])!;
      const rows = cases.map((name) => {
        const cost = perCall.get(name)!;
        check(cost > 0, `${name}: the longer run counted no more instructions than the shorter one`);
        const ratio = name === cases[0] ? 'baseline' : `${(baseline / cost).toFixed(2)}× the calls per instruction of ${cases[0]}`;
        return `| ${name} | ${Math.round(cost).toLocaleString('en-US')} | ${ratio} |`;
      });
      console.log(`\n### ${title}\n\n| case | instructions / call | vs baseline |\n|---|---:|---|\n${rows.join('\n')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
