import { setTimeout as sleep } from 'node:timers/promises';

// How the library's specs wait: a latch the test opens, a loader it holds, a condition polled
// where the code under test announces nothing else. A fixed sleep only ever lets a TTL, a
// backoff or a cool-down run out (`untilClockPasses`), never orders two things.

/** A gate the test opens by hand: whatever awaits `opened` goes on only after `open()`. */
export interface Latch {
  readonly opened: Promise<void>;
  open(): void;
}

export function latch(): Latch {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** A loader the test holds: a call marks `started`, then waits for `release()` before it settles with `answer()`. */
export interface HeldLoader<T> {
  loader: () => Promise<T>;
  /** resolves once the loader was called */
  started: Promise<void>;
  /** lets every call, past and future, settle */
  release(): void;
  /** how many times the loader was called */
  readonly calls: number;
}

export function heldLoader<T>(answer: () => T | Promise<T>): HeldLoader<T> {
  const called = latch();
  const released = latch();
  let calls = 0;
  return {
    loader: async () => {
      calls++;
      called.open();
      await released.opened;
      return answer();
    },
    started: called.opened,
    release: released.open,
    get calls() {
      return calls;
    },
  };
}

/**
 * Polls `check` until it holds, for what is only observable by looking (a bus message applied in
 * another instance, a key gone from Redis). `timeoutMs` only ends a test whose condition never comes.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, { timeoutMs = 5_000, what = 'the condition' } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Resolves once the clock is past `time` (ms since the epoch): lets a TTL, a backoff or a cool-down run out. */
export async function untilClockPasses(time: number): Promise<void> {
  while (Date.now() <= time) await sleep(time - Date.now() + 1);
}
