import { Logger } from '@nestjs/common';

/** An invalidation of L2 to run again: answers `true` once Redis took it. */
type Retry = () => Promise<boolean>;

interface Pending {
  retry: Retry;
  attempts: number;
}

const MAX_PENDING = 10_000;
const RETRY_INTERVAL_MS = 1_000;
const LOG_INTERVAL_MS = 10_000;
/** an invalidation that keeps failing with Redis answering (ACLs, OOM) is given up after this many tries */
const MAX_ATTEMPTS = 120;

/**
 * Invalidations Redis could not take (it was down) are kept and run again when it answers,
 * so an old value can never be served from L2 after it comes back. Deletes are idempotent:
 * running one late removes at most a value that would have been reloaded anyway.
 */
export class DeferredInvalidations {
  private readonly logger = new Logger('CacheRedis');
  private readonly pending: Pending[] = [];
  private timer?: NodeJS.Timeout;
  private flushing = false;
  private dropped = 0;
  private droppedLoggedAt = -Infinity;

  /**
   * `connected`: whether Redis is connected (a failure then counts against the retry; while it is
   * away, none does). `onGiveUp`: an invalidation was dropped (too many waiting, or it kept failing
   * with Redis connected): whatever may hold what it removed must go.
   */
  constructor(
    private readonly connected: () => boolean = () => true,
    private readonly onGiveUp: () => void = () => undefined,
  ) {}

  add(retry: Retry): void {
    if (this.pending.length >= MAX_PENDING) {
      this.pending.shift();
      this.dropped++;
      const now = Date.now();
      // One line per interval however many are dropped (a flood drops thousands a second).
      if (now - this.droppedLoggedAt >= LOG_INTERVAL_MS) {
        this.droppedLoggedAt = now;
        this.logger.error(
          `more than ${MAX_PENDING} invalidations waiting for Redis: dropped the oldest (${this.dropped} so far); ` +
            'L2 may serve what they removed until it expires',
        );
      }
      this.onGiveUp();
    }
    this.pending.push({ retry, attempts: 0 });
    this.timer ??= setInterval(() => void this.flush(), RETRY_INTERVAL_MS).unref();
  }

  get size(): number {
    return this.pending.length;
  }

  /**
   * Whether nothing waits for Redis; when something does, a flush starts in the background.
   * Until then a read must not trust L2, which may still hold what these invalidations remove.
   */
  settledNow(): boolean {
    if (this.pending.length === 0) return true;
    void this.flush();
    return false;
  }

  /** Runs the waiting invalidations in order; stops at the first that fails (Redis is still away). */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const head = this.pending[0];
        if (!(await head.retry())) {
          if (!this.connected() || ++head.attempts < MAX_ATTEMPTS) return;
          // Redis answers other commands but refuses this one for good: it must not block the rest.
          this.pending.shift();
          this.logger.error(`an invalidation failed ${MAX_ATTEMPTS} times: given up; L2 may serve what it removes until it expires`);
          this.onGiveUp();
          continue;
        }
        this.pending.shift();
      }
      clearInterval(this.timer);
      this.timer = undefined;
    } finally {
      this.flushing = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
