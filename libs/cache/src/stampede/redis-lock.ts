import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys/redis-keys.js';
import type { CircuitBreaker } from '../layers/circuit-breaker.js';
import { SCRIPTS } from '../scripts/redis-script.js';

/** A held load lock: its owner token, when the load started (Redis time, ms), and the tags it armed. */
export interface Lock {
  token: string;
  startedAt: number;
  armedTags?: readonly string[];
}

/** how long a tag invalidation is remembered against loads that started before it */
export const TAG_STAMP_TTL_MS = 10 * 60_000;

/**
 * The lock one load of an entry holds across processes (`SET NX PX` with an owner token): the
 * others wait for its value. Only the holder's value may fill the entry (see set-leased.lua), and a
 * delete, a newer write or a tag stamp ends it. Behind the cache's circuit breaker.
 */
export class RedisLock {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly breaker: CircuitBreaker,
  ) {}

  /**
   * Takes the lock and arms the stamps of `tagIds` (the load's tags known before it runs, see
   * acquire-lock-1.lua). `undefined` when Redis failed: the caller then loads without a lock.
   */
  async acquire(
    id: string,
    token: string,
    ttlMs: number,
    tagIds: readonly string[] = [],
  ): Promise<{ acquired: boolean; startedAt: number } | undefined> {
    const keys = [this.keys.lock(id), ...tagIds.map((tag) => this.keys.tagStamp(tag))];
    const answer = await this.breaker.run(
      'EVALSHA',
      async () => (await SCRIPTS.acquireLock.run(this.redis, keys, [token, ttlMs, TAG_STAMP_TTL_MS])) as [number, number],
      undefined,
    );
    return answer && { acquired: answer[0] === 1, startedAt: Number(answer[1]) };
  }

  async extend(id: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.breaker.run('EVALSHA', () => SCRIPTS.extendLock.run(this.redis, [this.keys.lock(id)], [token, ttlMs]), 0)) === 1;
  }

  async release(id: string, token: string): Promise<void> {
    await this.breaker.run('EVALSHA', () => SCRIPTS.releaseLock.run(this.redis, [this.keys.lock(id)], [token]), 0);
  }
}
