import { Logger } from '@nestjs/common';

export interface CircuitBreakerOptions {
  /** consecutive failures that open the breaker */
  threshold: number;
  /** how long it then skips Redis, ms; the first call after it is the trial */
  cooldownMs: number;
}

const WARN_INTERVAL_MS = 10_000;

/**
 * Skips a failing Redis: after `threshold` failures in a row every call answers its fallback at
 * once for `cooldownMs`, so a hanging Redis costs a request nothing instead of a command timeout
 * per command. Then one call is tried; a failure opens it again at once. Failures are logged at
 * most every 10 s.
 */
export class CircuitBreaker {
  private readonly logger = new Logger('CacheRedis');
  private consecutiveFailures = 0;
  private openUntil = 0;
  private halfOpen = false;
  private lastWarnAt = 0;

  constructor(private readonly options: CircuitBreakerOptions) {}

  get open(): boolean {
    return Date.now() < this.openUntil;
  }

  run<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    // The clock is read only while the breaker is open: a closed one costs a command no clock read.
    if (this.openUntil > 0) {
      if (Date.now() < this.openUntil) return Promise.resolve(fallback);
      // The cool-down is over: this call is the trial.
      this.openUntil = 0;
      this.halfOpen = true;
    }
    let running: Promise<T>;
    try {
      running = run();
    } catch (error) {
      running = Promise.reject(error as Error);
    }
    // `then`, not `async`/`await`: on every Redis command, a promise less.
    return running.then(
      (result) => {
        this.consecutiveFailures = 0;
        this.halfOpen = false;
        return result;
      },
      (error: unknown) => {
        this.failed(command, error);
        return fallback;
      },
    );
  }

  private failed(command: string, error: unknown): void {
    const now = Date.now();
    if (this.halfOpen || ++this.consecutiveFailures >= this.options.threshold) {
      this.openUntil = now + this.options.cooldownMs;
      this.consecutiveFailures = 0;
      this.halfOpen = false;
    }
    if (now - this.lastWarnAt >= WARN_INTERVAL_MS) {
      this.lastWarnAt = now;
      this.logger.warn(`Redis ${command} failed, continuing without L2: ${(error as Error).message}`);
    }
  }
}
