import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every 2 ms until it holds; answers how long that took, or throws after `limitMs`. */
export async function within(limitMs: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await sleep(2);
  }
  return Date.now() - started;
}
