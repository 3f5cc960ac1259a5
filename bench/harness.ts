/**
 * The measuring harness of the benchmarks: cases in groups whose first case is the baseline of
 * the others, samples interleaved, median and spread per case, a Markdown table.
 * `BENCH_SAMPLES` and `BENCH_SAMPLE_MS` shorten a run while a benchmark is being written.
 */
import os from 'node:os';

export const CONCURRENCY = 64;
export const WARMUP_MS = 500;
export const SAMPLES = positiveFromEnv('BENCH_SAMPLES', 7);
export const SAMPLE_MS = positiveFromEnv('BENCH_SAMPLE_MS', 400);
/** a batch is timed as one unit; warm-up doubles it until it takes at least this long */
export const MIN_BATCH_MS = 20;

export type Batch = (ops: number) => void | Promise<void>;

export interface Case {
  name: string;
  run: Batch;
  /** why this case cannot run now; it is kept in the table with this reason instead of a rate */
  skip?: string;
}

/** The first case of a group is the baseline of the others; a group's samples are interleaved. */
export type Group = readonly Case[];

export interface Result {
  name: string;
  /** median of the samples */
  opsPerSec: number;
  /** (max - min) / median of the samples */
  spread: number;
  baseline?: Result;
  skipped?: string;
}

/** keeps results observable so the optimizer cannot drop the measured work */
export const sink = { value: 0 };

export function synchronously(op: () => number): Batch {
  return (ops) => {
    for (let i = 0; i < ops; i++) sink.value += op();
  };
}

export function sequentially(op: () => Promise<unknown>): Batch {
  return async (ops) => {
    for (let i = 0; i < ops; i++) await op();
  };
}

/** `CONCURRENCY` workers, each awaiting its own calls, so that many are always in flight. */
export function concurrently(op: (worker: number) => Promise<unknown>): Batch {
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
export async function warmUp(run: Batch): Promise<number> {
  let batch = CONCURRENCY;
  const until = performance.now() + WARMUP_MS;
  while (performance.now() < until) {
    const started = performance.now();
    await run(batch);
    if (performance.now() - started < MIN_BATCH_MS) batch *= 2;
  }
  return batch;
}

export async function sample(run: Batch, batch: number): Promise<number> {
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
export async function measure(group: Group): Promise<Result[]> {
  if (group[0].skip) throw new Error(`bench: the baseline "${group[0].name}" cannot be skipped`);
  const batches: number[] = [];
  for (const { name, run, skip } of group) {
    process.stderr.write(skip ? `skipping ${name}: ${skip}\n` : `warming up ${name}\n`);
    batches.push(skip ? 0 : await warmUp(run));
  }
  const rates = group.map((): number[] => []);
  for (let round = 0; round < SAMPLES; round++) {
    for (const [i, { run, skip }] of group.entries()) if (!skip) rates[i].push(await sample(run, batches[i]));
  }
  const results = group.map(({ name, skip }, i): Result => {
    if (skip) return { name, opsPerSec: NaN, spread: NaN, skipped: skip };
    const sorted = rates[i].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return { name, opsPerSec: median, spread: (sorted[sorted.length - 1] - sorted[0]) / median };
  });
  for (const result of results.slice(1)) result.baseline = results[0];
  return results;
}

export function ratio(result: Result): string {
  if (result.skipped) return `skipped: ${result.skipped}`;
  if (!result.baseline) return 'baseline';
  const r = result.opsPerSec / result.baseline.opsPerSec;
  const shown = r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}× (1/${Math.round(1 / r)})`;
  return `${shown} of ${result.baseline.name}`;
}

export function table(results: readonly Result[]): string {
  const rows = results.map((r) =>
    r.skipped
      ? [r.name, '–', '–', '–', ratio(r)].join(' | ')
      : [
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

/** The machine line of a benchmark's output: Node, cores, CPU model. */
export function machine(): string {
  return `node ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'})`;
}

/** A positive whole number from the environment variable `name` (a bench setting), else `fallback`. */
export function positiveFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`bench: ${name} must be a positive whole number; got ${JSON.stringify(text)}`);
  return value;
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`bench: ${message}`);
}
