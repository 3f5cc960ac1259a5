// One "application instance" of bench/stampede.bench.ts: its own CacheService (the built
// @cachekit/cache, as in test/support/cache-process.mjs) and its own pg Pool, sharing Redis and
// PostgreSQL with its siblings. The parent drives it over IPC; it answers with raw samples.
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { NestFactory } from '@nestjs/core';
import { CacheModule, CacheService } from '@cachekit/cache';
import pg from 'pg';

const { REDIS_URL = 'redis://127.0.0.1:6379', CACHE_KEY_PREFIX, DATABASE_URL, POOL_SIZE = '10' } = process.env;
const app = await NestFactory.createApplicationContext(CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: CACHE_KEY_PREFIX }), {
  logger: ['error', 'warn'],
});
await app.init();
const cache = app.get(CacheService);
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: Number(POOL_SIZE) });
pool.on('error', () => undefined);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** epoch ms with sub-ms resolution; comparable across processes on one machine */
const now = () => performance.timeOrigin + performance.now();

/** The "database query" of the scenario: one round trip of `SELECT pg_sleep(queryMs / 1000)` through the pool. */
function loaderFor(run) {
  return async () => {
    const started = now();
    run.loaderStarts.push(started);
    run.inFlight++;
    run.maxInFlight = Math.max(run.maxInFlight, run.inFlight);
    try {
      await pool.query('SELECT pg_sleep($1)', [run.queryMs / 1000]);
      return { by: process.pid, seq: run.loaderStarts.length, at: Date.now() };
    } finally {
      run.inFlight--;
      run.loaderMs.push(now() - started);
    }
  };
}

const STATUS = { HIT: 0, MISS: 1, STALE: 2 };

const commands = {
  /** A cold load of `key` before the steady load starts, so the window begins with a fresh value. */
  async prime({ key, options, queryMs }) {
    const run = { queryMs, loaderStarts: [], loaderMs: [], inFlight: 0, maxInFlight: 0 };
    const lookup = await cache.getOrSetWithStatus(key, loaderFor(run), options);
    return { status: lookup.status, loads: run.loaderStarts.length };
  },

  /**
   * Open loop: request i is sent at `startAt + phaseMs + i * intervalMs` (epoch ms) whatever the
   * earlier ones are doing, until `startAt + durationMs`. Latency counts from the scheduled time,
   * so a late timer shows up as latency instead of hiding (no coordinated omission).
   */
  async steady({ key, options, queryMs, startAt, durationMs, intervalMs, phaseMs, settleMs }) {
    const run = { queryMs, loaderStarts: [], loaderMs: [], inFlight: 0, maxInFlight: 0 };
    const loader = loaderFor(run);
    const endAt = startAt + durationMs;
    /** per request: [scheduled (ms from startAt), latency ms, status (0 HIT, 1 MISS, 2 STALE, -1 error)] */
    const requests = [];
    const pending = [];
    const errors = [];
    let maxTimerLagMs = 0;
    for (let i = 0; ; i++) {
      const scheduled = startAt + phaseMs + i * intervalMs;
      if (scheduled >= endAt) break;
      const wait = scheduled - now();
      if (wait > 0) await sleep(wait);
      // A timer may fire a fraction of a millisecond early: then the clock starts at the send, not later.
      const sent = now();
      const from = Math.min(scheduled, sent);
      maxTimerLagMs = Math.max(maxTimerLagMs, sent - scheduled);
      const row = [scheduled - startAt, 0, -1];
      requests.push(row);
      pending.push(
        cache.getOrSetWithStatus(key, loader, options).then(
          (lookup) => {
            row[1] = now() - from;
            row[2] = STATUS[lookup.status];
          },
          (error) => {
            row[1] = now() - from;
            if (errors.length < 5) errors.push(String(error?.message ?? error));
          },
        ),
      );
    }
    await Promise.all(pending);
    // Background refreshes started inside the window may still run: let them finish, so that
    // they are counted here and do not overlap the next scenario.
    const settleUntil = now() + settleMs;
    while (run.inFlight > 0 && now() < settleUntil) await sleep(10);
    return {
      requests,
      errors,
      loaderStarts: run.loaderStarts.map((t) => t - startAt),
      loaderMs: run.loaderMs,
      maxInFlight: run.maxInFlight,
      maxTimerLagMs,
    };
  },

  async close() {
    await app.close();
    await pool.end();
    return {};
  },
};

process.on('message', async (message) => {
  try {
    const answer = await commands[message.cmd](message);
    process.send({ id: message.id, ok: true, ...answer });
    if (message.cmd === 'close') process.disconnect();
  } catch (error) {
    process.send({ id: message.id, ok: false, error: String(error?.stack ?? error) });
  }
});
process.send({ event: 'ready' });
