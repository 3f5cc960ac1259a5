/** A reading of the queue's clock is trusted this long before a slower round trip may replace it. */
const SAMPLE_TTL_MS = 60_000;

/**
 * One clock for the versions of write-behind writes. The queue Redis gives a queued write its
 * version from its own clock (µs); a write the queue cannot take (the fallback) gets its version
 * here, from the same clock as estimated by this process (its own clock plus the offset measured
 * on the latest quick round trip), and never below a version this process has seen (a hybrid
 * logical clock). So a skewed app clock can neither put a fallback write behind an older queued
 * write nor ahead of a newer one.
 */
export class WriteBehindClock {
  /** the highest version seen or given out */
  private last = 0;
  /** queue clock minus app clock, µs; 0 until measured (then the app clock stands in) */
  private offsetUs = 0;
  private sampleRttMs = Infinity;
  private sampledAt = -Infinity;

  /** `now`: the app clock in ms (injectable for tests). */
  constructor(readonly now: () => number = Date.now) {}

  /** The queue's clock read `queueUs` during a round trip from `sentMs` to `receivedMs` (app clock). */
  sync(queueUs: number, sentMs: number, receivedMs: number): void {
    const rtt = Math.max(0, receivedMs - sentMs);
    // A quicker round trip bounds the error better (half the round trip); an old one may drift.
    if (rtt > this.sampleRttMs && receivedMs - this.sampledAt < SAMPLE_TTL_MS) return;
    this.offsetUs = queueUs - ((sentMs + receivedMs) / 2) * 1000;
    this.sampleRttMs = rtt;
    this.sampledAt = receivedMs;
  }

  /** A version taken elsewhere (the queue, the database): later versions go above it. */
  observe(version: number): void {
    if (version > this.last) this.last = version;
  }

  /** The lowest version the queue may give the next write: above every version seen here. */
  floor(): number {
    return this.last + 1;
  }

  /** A version for a write the queue did not take: the queue's clock as estimated here, above every version seen. */
  next(): number {
    const version = Math.max(Math.floor(this.now() * 1000 + this.offsetUs), this.last + 1);
    this.last = version;
    return version;
  }
}
