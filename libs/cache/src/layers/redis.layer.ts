import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type CacheEnvelope } from '../entry/envelope.js';
import { decodeEnvelope } from '../entry/serializer.js';
import { escapeGlob } from '../keys/key-part.js';
import type { RedisKeys } from '../keys/redis-keys.js';
import { SCRIPTS } from '../scripts/redis-script.js';
import { type Lock, TAG_STAMP_TTL_MS } from '../stampede/redis-lock.js';
import { HASH_TOMBSTONE_TTL_MS } from '../structures/hash-cache.js';
import type { CircuitBreaker } from './circuit-breaker.js';

const SCAN_BATCH = 1000;
const TAG_BATCH = 500;
/** how long the highest written version of an entry is remembered */
const VERSION_TTL_MS = 24 * 60 * 60_000;

/**
 * L2: envelopes in Redis, their version floors and tag indexes (scripts in `scripts/`). A failing
 * Redis never fails a caller: every command runs behind the circuit breaker, reads answer "miss"
 * and writes are dropped. Methods that must tell "failed" from "no" answer `undefined` for failed.
 */
export class RedisLayer {
  private readonly logger = new Logger('CacheRedis');

  constructor(
    readonly redis: Redis,
    readonly keys: RedisKeys,
    readonly breaker: CircuitBreaker,
  ) {}

  /**
   * The envelope at `id`, with its text; a value that is not an envelope is deleted and reads
   * as a miss.
   */
  async get(id: string): Promise<{ envelope: CacheEnvelope; text: string } | undefined> {
    const key = this.keys.entry(id);
    const text = await this.guard('GET', () => this.redis.get(key), null);
    if (text === null) return undefined;
    const envelope = decodeEnvelope(text);
    if (!envelope) {
      this.logger.warn(`removed an unreadable value at ${key}`);
      await this.guard('UNLINK', () => this.redis.unlink(key), 0);
      return undefined;
    }
    return { envelope, text };
  }

  /** Writes known truth; ends any running load's lease. `false` when Redis did not take it. */
  async set(id: string, payload: string, ttlMs: number, tagIds: readonly string[] = []): Promise<boolean> {
    if (ttlMs <= 0) return true;
    const keys = [this.keys.entry(id), this.keys.lock(id), ...tagIds.map((tag) => this.keys.tag(tag))];
    return (await this.guard('SET', () => SCRIPTS.set.run(this.redis, keys, [payload, ttlMs]), 0)) === 1;
  }

  /**
   * Writes a committed version (see set-versioned.lua): `'written'`, `'older'` when a newer version
   * holds, `'unknown'` when Redis knew nothing of the key (its floor is set, no value written),
   * `undefined` if Redis failed.
   */
  async setVersioned(
    id: string,
    payload: string,
    ttlMs: number,
    tagIds: readonly string[],
    version: number,
  ): Promise<'written' | 'older' | 'unknown' | undefined> {
    const keys = [this.keys.entry(id), this.keys.lock(id), this.keys.version(id), ...tagIds.map((tag) => this.keys.tag(tag))];
    const landed = await this.guard(
      'SET',
      () => SCRIPTS.setVersioned.run(this.redis, keys, [payload, Math.max(ttlMs, 1), version, Math.max(ttlMs, VERSION_TTL_MS)]),
      undefined,
    );
    if (landed === undefined) return undefined;
    return landed === 1 ? 'written' : landed === 2 ? 'unknown' : 'older';
  }

  /** See EVICT_OLDER; `undefined` if Redis failed. */
  async evictOlder(versions: ReadonlyMap<string, number>): Promise<number | undefined> {
    if (versions.size === 0) return 0;
    const keys = [...versions.keys()].flatMap((id) => [this.keys.entry(id), this.keys.lock(id), this.keys.version(id)]);
    return this.guard(
      'EVALSHA',
      async () => Number(await SCRIPTS.evictOlder.run(this.redis, keys, [...versions.values(), VERSION_TTL_MS])),
      undefined,
    );
  }

  /**
   * Fills the entry from a load: `true` if it landed, `false` if an invalidation or a newer
   * write came first, `undefined` if Redis failed.
   */
  async setLeased(id: string, payload: string, ttlMs: number, tagIds: readonly string[], lease: Lock): Promise<boolean | undefined> {
    const keys = [
      this.keys.entry(id),
      this.keys.lock(id),
      ...tagIds.map((tag) => this.keys.tag(tag)),
      ...tagIds.map((tag) => this.keys.tagStamp(tag)),
    ];
    const landed = await this.guard(
      'SET',
      () =>
        SCRIPTS.setLeased.run(this.redis, keys, [
          payload,
          Math.max(ttlMs, 1),
          lease.token,
          lease.startedAt,
          tagIds.length,
          armed(tagIds, lease.armedTags) ? 1 : 0,
          TAG_STAMP_TTL_MS,
        ]),
      undefined,
    );
    return landed === undefined ? undefined : landed === 1;
  }

  /** Moves the expiry to `expiresAt` if that is later than the current one. */
  async extend(id: string, expiresAt: number): Promise<void> {
    await this.guard('PEXPIREAT', () => this.redis.pexpireat(this.keys.entry(id), expiresAt, 'GT'), 0);
  }

  /** Deletes entries and the leases of their running loads; `undefined` if Redis failed. */
  async delete(ids: readonly string[]): Promise<number | undefined> {
    if (ids.length === 0) return 0;
    const keys = ids.flatMap((id) => [this.keys.entry(id), this.keys.lock(id)]);
    return this.guard('UNLINK', async () => Number(await SCRIPTS.delete.run(this.redis, keys, [])), undefined);
  }

  /**
   * Deletes hash objects (`cache.hash()`) of a namespace by id, leaving tombstones for fills still
   * running; `undefined` if Redis failed.
   */
  async deleteHashes(namespace: string, ids: readonly string[]): Promise<number | undefined> {
    if (ids.length === 0) return 0;
    const hashes = this.keys.hashPrefix(namespace);
    const tombstones = this.keys.hashTombstonePrefix(namespace);
    const keys = ids.flatMap((id) => [hashes + id, tombstones + id]);
    return this.guard('EVALSHA', async () => Number(await SCRIPTS.hashDelete.run(this.redis, keys, [HASH_TOMBSTONE_TTL_MS])), undefined);
  }

  /** SCAN + UNLINK over the hash objects of a namespace whose id matches `idGlob`; `undefined` if Redis failed. */
  async deleteHashesMatching(namespace: string, idGlob: string): Promise<number | undefined> {
    return this.guard('SCAN', () => this.scanUnlink(escapeGlob(this.keys.hashPrefix(namespace)) + idGlob), undefined);
  }

  /**
   * Runs a command of another part of the cache (hash objects) behind the same circuit breaker:
   * `fallback` when Redis fails or the breaker is open.
   */
  run<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    return this.guard(command, run, fallback);
  }

  /** Stamps the tag first (so older loads cannot land with it), then empties it in batches. */
  async invalidateTag(tagId: string): Promise<number | undefined> {
    return this.guard(
      'EVALSHA',
      async () => {
        await SCRIPTS.stampTag.run(this.redis, [this.keys.tagStamp(tagId)], [TAG_STAMP_TTL_MS]);
        let removed = 0;
        for (;;) {
          const batch = Number(await SCRIPTS.invalidateTagBatch.run(this.redis, [this.keys.tag(tagId)], [this.keys.prefix, TAG_BATCH]));
          removed += batch;
          if (batch < TAG_BATCH) return removed;
        }
      },
      undefined,
    );
  }

  /** SCAN + UNLINK in batches over entries matching `idGlob`, and over the leases of running loads. */
  async deleteMatching(idGlob: string): Promise<number | undefined> {
    return this.guard(
      'SCAN',
      async () => {
        await this.scanUnlink(this.keys.lockGlob(idGlob));
        return this.scanUnlink(this.keys.entryGlob(idGlob));
      },
      undefined,
    );
  }

  private async scanUnlink(match: string): Promise<number> {
    let deleted = 0;
    const stream = this.redis.scanStream({ match, count: SCAN_BATCH });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length) deleted += await this.redis.unlink(...keys);
    }
    return deleted;
  }

  /** Whether the breaker currently skips Redis. */
  get breakerOpen(): boolean {
    return this.breaker.open;
  }

  private guard<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    return this.breaker.run(command, run, fallback);
  }
}

/** Whether the lock armed the stamps of every tag the value ends up with. */
function armed(tagIds: readonly string[], armedTags: readonly string[] = []): boolean {
  return tagIds.every((tag) => armedTags.includes(tag));
}
