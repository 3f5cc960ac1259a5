import { setTimeout as sleep } from 'node:timers/promises';

export { untilClockPasses } from '../../libs/cache/test-support/wait.js';

/**
 * How long an e2e spec lets a change take to reach every instance before it fails: far below any
 * TTL in the specs (so only an invalidation can explain it), far above what a busy machine needs.
 * How fast changes really travel is measured by bench/cdc-visibility.bench.ts, not asserted in Jest.
 */
export const VISIBLE_MS = 10_000;

/** Polls `check` every 2 ms until it holds; answers how long that took, or throws after `limitMs`. */
export async function within(limitMs: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await sleep(2);
  }
  return Date.now() - started;
}

/** Polls `check` until it holds or `ms` pass; answers whether it held (for `expect(...).toBe(true)`). */
export async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

/** Polls `read` until `done` holds for its value or `ms` pass; answers the last value read. */
export async function readUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(50);
    value = await read();
  }
  return value;
}
