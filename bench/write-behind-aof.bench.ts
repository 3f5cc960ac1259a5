/**
 * Write-behind durability when the queue Redis crashes (issue 11): the built users-api takes a
 * stream of settings writes (one per user, so every acknowledged write must end up in its row);
 * half way through, the queue Redis is SIGKILLed and restarted on the same port from its data
 * directory. Afterwards the built worker drains the queue, and each acknowledged write is looked
 * up in PostgreSQL. One run per queue Redis persistence setting, the baseline being none at all:
 *   - `appendonly no`: what the queue Redis held is gone after the restart;
 *   - `appendonly yes`, `appendfsync everysec` (docker-compose.yml's default);
 *   - `appendonly yes`, `appendfsync always`.
 * A process crash (this one) loses nothing written to the AOF before the reply, whatever the fsync
 * policy; a machine crash can lose what was not fsynced yet: up to a second with `everysec`.
 * The worker starts once the stream is over, so every write queued before the crash is still in
 * the queue Redis when it dies (the most there is to lose).
 * Needs the built apps (`npm run build`), Redis at REDIS_URL (the cache, under a random prefix),
 * PostgreSQL at DATABASE_URL, and `redis-server`. Then
 * `node --import ./bench/register.mjs bench/write-behind-aof.bench.ts` (BENCH_RATE: writes per
 * second, default 200).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createTestDatabase, dropPrefix, freePort, REDIS_URL, uniquePrefix } from '../test/support/services.js';
import { WorkerProcess } from '../test/support/worker-process.js';

const USERS_API_MAIN = resolve('dist/apps/users-api/main.js');
/** writes per second, open loop */
const RATE = Number(process.env.BENCH_RATE ?? 200);
const DURATION_MS = 6_000;
const KILL_AT_MS = 3_000;
/** how long the queue Redis stays dead before it is started again */
const DOWN_MS = 500;
const DRAIN_TIMEOUT_MS = 60_000;

interface Setting {
  name: string;
  args: string[];
}

const SETTINGS: Setting[] = [
  { name: 'appendonly no (baseline)', args: ['--appendonly', 'no'] },
  { name: 'appendonly yes, appendfsync everysec', args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] },
  { name: 'appendonly yes, appendfsync always', args: ['--appendonly', 'yes', '--appendfsync', 'always'] },
];

/** A redis-server that can be SIGKILLed and started again on the same port and data directory. */
class QueueRedisServer {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(os.tmpdir(), 'wb-aof-'));
  constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<number> {
    const started = performance.now();
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--dir',
        this.dir,
        '--maxmemory-policy',
        'noeviction',
        ...this.args,
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    for (;;) {
      try {
        await probe.connect();
        // Loading the AOF answers -LOADING until it is done.
        if ((await probe.ping()) === 'PONG') break;
      } catch {
        probe.disconnect();
        if (performance.now() - started > 10_000) throw new Error(`redis-server on ${this.port} did not start`);
        await sleep(20);
      }
    }
    probe.disconnect();
    return performance.now() - started;
  }

  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Outcome {
  setting: string;
  sent: number;
  queued: number;
  written: number;
  refused: number;
  /** acknowledged (202 or 200) and in the database afterwards */
  persisted: number;
  lost: number;
  /** queued writes acknowledged in the last second before the kill: what a machine crash could take with `everysec` */
  lastSecond: number;
  restartMs: number;
  drainMs: number;
  /** latency of the acknowledged writes outside the crash (sent before the kill or 2 s after the restart), ms */
  p50: number;
  p99: number;
}

async function waitForHttp(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`users-api exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`users-api not live in 30 s:\n${output()}`);
}

async function run(setting: Setting): Promise<Outcome> {
  const database = await createTestDatabase('bench_wb_aof');
  const prefix = uniquePrefix('bench-aof');
  const queue = new QueueRedisServer(await freePort(), setting.args);
  const apiPort = await freePort();
  let api: ChildProcess | undefined;
  let worker: WorkerProcess | undefined;
  const sql = new pg.Client({ connectionString: database.url });
  const cache = new Redis(REDIS_URL);
  try {
    await queue.start();
    let apiOutput = '';
    api = spawn(process.execPath, [USERS_API_MAIN], {
      env: {
        PATH: process.env.PATH,
        PORT: String(apiPort),
        DATABASE_URL: database.url,
        REDIS_URL,
        QUEUE_REDIS_URL: queue.url,
        CACHE_KEY_PREFIX: prefix,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout?.on('data', (chunk) => (apiOutput += chunk));
    api.stderr?.on('data', (chunk) => (apiOutput += chunk));
    await waitForHttp(`http://127.0.0.1:${apiPort}/health/live`, api, () => apiOutput);
    await sql.connect();
    const total = Math.round((RATE * DURATION_MS) / 1000);
    const { rows } = await sql.query(
      `INSERT INTO users (email, name) SELECT 'aof-' || g || '@example.com', 'user ' || g FROM generate_series(1, $1::int) g RETURNING id`,
      [total],
    );
    const ids = (rows as Array<{ id: number }>).map((row) => row.id).sort((a, b) => a - b);

    const outcomes: Array<{ status: number; sent: number; at: number }> = [];
    let killedAt = Infinity;
    let restartMs = 0;
    const crash = (async () => {
      await sleep(KILL_AT_MS);
      await queue.kill();
      killedAt = performance.now();
      await sleep(DOWN_MS);
      restartMs = await queue.start();
    })();
    const started = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const wait = started + (1000 * i) / RATE - performance.now();
      if (wait > 0) await sleep(wait);
      const sent = performance.now();
      inFlight.push(
        fetch(`http://127.0.0.1:${apiPort}/users/${ids[i]}/settings`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ write: i }),
        }).then(
          async (response) => {
            await response.arrayBuffer();
            outcomes[i] = { status: response.status, sent, at: performance.now() };
          },
          () => void (outcomes[i] = { status: 0, sent, at: performance.now() }),
        ),
      );
    }
    await Promise.all(inFlight);
    await crash;

    const drainStarted = performance.now();
    worker = await WorkerProcess.start({ DATABASE_URL: database.url, REDIS_URL, QUEUE_REDIS_URL: queue.url, CACHE_KEY_PREFIX: prefix });
    const queueRedis = new Redis(queue.url);
    try {
      // Drained: nothing pending any more (the worker settles each write it persists; the sweeper
      // requeues a pending write whose job was lost with an unsynced AOF tail).
      for (;;) {
        const pending = await queueRedis.hlen(`${prefix}~wb:pending:users`);
        if (pending === 0) break;
        if (performance.now() - drainStarted > DRAIN_TIMEOUT_MS) throw new Error(`not drained: ${pending} pending`);
        await sleep(50);
      }
    } finally {
      queueRedis.disconnect();
    }
    const drainMs = performance.now() - drainStarted;

    const persisted = new Set<number>(
      (
        (await sql.query(`SELECT (settings->>'write')::int AS w FROM users WHERE id = ANY($1) AND settings ? 'write'`, [ids]))
          .rows as Array<{
          w: number;
        }>
      ).map((row) => row.w),
    );
    const acknowledged = outcomes.map((o, i) => ({ ...o, i })).filter((o) => o.status === 202 || o.status === 200);
    const kept = acknowledged.filter((o) => persisted.has(o.i)).length;
    return {
      setting: setting.name,
      sent: total,
      queued: outcomes.filter((o) => o.status === 202).length,
      written: outcomes.filter((o) => o.status === 200).length,
      refused: outcomes.filter((o) => o.status !== 202 && o.status !== 200).length,
      persisted: kept,
      lost: acknowledged.length - kept,
      lastSecond: outcomes.filter((o) => o.status === 202 && o.at <= killedAt && o.at > killedAt - 1000).length,
      restartMs,
      drainMs,
      ...latency(acknowledged.filter((o) => o.at < killedAt || o.sent > killedAt + DOWN_MS + restartMs + 2_000)),
    };
  } finally {
    await worker?.kill('SIGTERM');
    if (api && api.exitCode === null) {
      const exited = once(api, 'exit');
      api.kill('SIGTERM');
      await exited;
    }
    await sql.end().catch(() => undefined);
    await dropPrefix(cache, prefix);
    cache.disconnect();
    await queue.remove();
    await database.drop();
  }
}

function latency(writes: ReadonlyArray<{ sent: number; at: number }>): { p50: number; p99: number } {
  const sorted = writes.map((w) => w.at - w.sent).sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

async function main(): Promise<void> {
  for (const file of [USERS_API_MAIN, resolve('dist/apps/worker/main.js')]) {
    if (!existsSync(file)) throw new Error(`bench: ${file} is missing; run \`npm run build\` first`);
  }
  const results: Outcome[] = [];
  for (const setting of SETTINGS) {
    process.stderr.write(
      `${setting.name}: ${RATE} writes/s for ${DURATION_MS / 1000} s, queue Redis SIGKILLed at ${KILL_AT_MS / 1000} s\n`,
    );
    results.push(await run(setting));
  }
  const version = /v=(\S+)/.exec(
    await new Promise<string>((done) => {
      const child = spawn('redis-server', ['--version']);
      let out = '';
      child.stdout.on('data', (chunk) => (out += chunk));
      child.on('close', () => done(out));
    }),
  )?.[1];
  console.log(
    `\nnode ${process.version}, ${os.availableParallelism()} cores, redis-server ${version}; the built users-api and worker; ` +
      `${RATE} PATCH /users/:id/settings per second for ${DURATION_MS / 1000} s, one per user; queue Redis SIGKILLed at ` +
      `${KILL_AT_MS / 1000} s and started again ${DOWN_MS} ms later from its --dir; the worker drains afterwards\n`,
  );
  console.log(
    '| queue Redis | sent | 202 queued | 200 written at once | refused | acknowledged and persisted | acknowledged and lost | queued in the last second before the kill | restart (load) | drain | PATCH p50 / p99 outside the crash | p50 vs baseline |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const base = results[0].p50;
  for (const r of results) {
    console.log(
      `| ${r.setting} | ${r.sent} | ${r.queued} | ${r.written} | ${r.refused} | ${r.persisted} | ${r.lost} | ${r.lastSecond} | ` +
        `${r.restartMs.toFixed(0)} ms | ${(r.drainMs / 1000).toFixed(1)} s | ${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} ms | ` +
        `${r === results[0] ? 'baseline' : `${(r.p50 / base).toFixed(2)}×`} |`,
    );
  }
}

await main();
