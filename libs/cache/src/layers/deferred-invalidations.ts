import { Logger } from '@nestjs/common';

/** An invalidation of L2 to run again: answers `true` once Redis took it. */
type Retry = () => Promise<boolean>;

const MAX_PENDING = 10_000;
const RETRY_INTERVAL_MS = 1_000;

/**
 * Invalidations Redis could not take (it was down) are kept and run again when it answers,
 * so an old value can never be served from L2 after it comes back. Deletes are idempotent:
 * running one late removes at most a value that would have been reloaded anyway.
 */
export class DeferredInvalidations {
  private readonly logger = new Logger('CacheRedis');
  private readonly pending: Retry[] = [];
  private timer?: NodeJS.Timeout;
  private flushing = false;

  add(retry: Retry): void {
    if (this.pending.length >= MAX_PENDING) {
      this.pending.shift();
      this.logger.error(`more than ${MAX_PENDING} invalidations waiting for Redis: dropping the oldest; L2 may serve it until it expires`);
    }
    this.pending.push(retry);
    this.timer ??= setInterval(() => void this.flush(), RETRY_INTERVAL_MS).unref();
  }

  get size(): number {
    return this.pending.length;
  }

  /**
   * Whether nothing waits for Redis (after trying to run what does): until then a read must not
   * trust L2, which may still hold what these invalidations remove.
   */
  async settled(): Promise<boolean> {
    if (this.pending.length === 0) return true;
    await this.flush();
    return this.pending.length === 0;
  }

  /** Runs the waiting invalidations in order; stops at the first that fails (Redis is still away). */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        if (!(await this.pending[0]())) return;
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
