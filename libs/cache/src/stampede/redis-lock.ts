import type { RedisKeys } from '../keys/redis-keys.js';
import type { CircuitBreaker } from '../layers/circuit-breaker.js';
import type { RedisClient } from '../layers/redis-client.js';
import { SCRIPTS } from '../scripts/redis-script.js';

/**
 * A held load lock: its owner token, when the load started (Redis time of the lock's node, ms),
 * and the tags it armed, each with the time of its own node when it was armed (on a cluster a
 * tag's stamp lives on another node than the lock).
 */
export interface Lock {
  token: string;
  startedAt: number;
  armedTags?: ReadonlyMap<string, number>;
}

/** how long a tag invalidation is remembered against loads that started before it */
export const TAG_STAMP_TTL_MS = 10 * 60_000;

/**
 * The lock one load of an entry holds across processes (`SET NX PX` with an owner token): the
 * others wait for its value. Only the holder's value may fill the entry (see set-if-locked-2.lua), and a
 * delete, a newer write or a tag stamp ends it. Behind the cache's circuit breaker.
 */
export class RedisLock {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly breaker: CircuitBreaker,
  ) {}

  /**
   * Takes the lock, then arms the stamps of `tagIds` (the load's tags known before it runs, see
   * arm-tag-1.lua), each in its own slot. `undefined` when Redis failed: the caller then loads
   * without a lock.
   */
  async acquire(
    id: string,
    token: string,
    ttlMs: number,
    tagIds: readonly string[] = [],
  ): Promise<{ acquired: boolean; startedAt: number; armedTags: ReadonlyMap<string, number> } | undefined> {
    return this.breaker.run(
      'EVALSHA',
      async () => {
        const [taken, startedAt] = (await SCRIPTS.acquireLock.run(this.redis, [this.keys.lock(id)], [token, ttlMs])) as [number, number];
        if (taken !== 1) return { acquired: false, startedAt: Number(startedAt), armedTags: new Map() };
        try {
          const armedAt = await Promise.all(
            tagIds.map((tag) => SCRIPTS.armTag.run(this.redis, [this.keys.tagStamp(tag)], [TAG_STAMP_TTL_MS])),
          );
          return { acquired: true, startedAt: Number(startedAt), armedTags: new Map(tagIds.map((tag, i) => [tag, Number(armedAt[i])])) };
        } catch (error) {
          // Not armed, so no fill could be checked: hand the lock back, the caller loads without it.
          await this.release(id, token).catch(() => undefined);
          throw error;
        }
      },
      undefined,
    );
  }

  async extend(id: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.breaker.run('EVALSHA', () => SCRIPTS.extendLock.run(this.redis, [this.keys.lock(id)], [token, ttlMs]), 0)) === 1;
  }

  async release(id: string, token: string): Promise<void> {
    await this.breaker.run('EVALSHA', () => SCRIPTS.releaseLock.run(this.redis, [this.keys.lock(id)], [token]), 0);
  }
}
