import { Logger } from '@nestjs/common';
import { type CacheEnvelope } from '../entry/envelope.js';
import { decodeEnvelope } from '../entry/serializer.js';
import { hashObjectKey, type RedisKeys } from '../keys/redis-keys.js';
import { SCRIPTS } from '../scripts/redis-script.js';
import { type Lock, TAG_STAMP_TTL_MS } from '../stampede/redis-lock.js';
import { HASH_TOMBSTONE_TTL_MS } from '../structures/hash-cache.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { ReadBatcher } from './read-batcher.js';
import { groupBySlot, primaries, type RedisClient } from './redis-client.js';

const SCAN_BATCH = 1000;
const TAG_BATCH = 500;
/** how long the highest written version of an entry is remembered */
const VERSION_TTL_MS = 24 * 60 * 60_000;
/**
 * How far apart two cluster nodes' clocks may be: a load's value whose tag is known only from the
 * value (not armed when the load started) is refused if the tag was invalidated up to this long
 * before the load started, as that tag's node tells time.
 */
const CLUSTER_CLOCK_SKEW_MS = 1_000;

/**
 * L2: envelopes in Redis, their version floors and tag indexes (scripts in `scripts/`). A failing
 * Redis never fails a caller: every command runs behind the circuit breaker, reads answer "miss"
 * and writes are dropped. Methods that must tell "failed" from "no" answer `undefined` for failed.
 */
export class RedisLayer {
  private readonly logger = new Logger('CacheRedis');
  private readonly clockSkewMs: number;
  private readonly reads: ReadBatcher;

  constructor(
    readonly redis: RedisClient,
    readonly keys: RedisKeys,
    readonly breaker: CircuitBreaker,
  ) {
    // 0 on one node: every time is read from the same clock.
    this.clockSkewMs = redis.isCluster ? CLUSTER_CLOCK_SKEW_MS : 0;
    this.reads = new ReadBatcher(redis);
  }

  /**
   * The envelope at `id`, with its text; a value that is not an envelope is deleted and reads
   * as a miss.
   */
  get(id: string): Promise<{ envelope: CacheEnvelope; text: string } | undefined> {
    // `then`, not `async`/`await`: the read path of every L2 hit, a promise less.
    const key = this.keys.entry(id);
    return this.guard('GET', () => this.reads.get(key), null).then((text) => {
      if (text === null) return undefined;
      const envelope = decodeEnvelope(text);
      if (envelope) return { envelope, text };
      this.logger.warn(`removed an unreadable value at ${key}`);
      return this.guard('UNLINK', () => this.redis.unlink(key), 0).then(() => undefined);
    });
  }

  /** Writes known truth; ends any running load's lock. `false` when Redis did not take it. */
  async set(id: string, payload: string, ttlMs: number, tagIds: readonly string[] = []): Promise<boolean> {
    if (ttlMs <= 0) return true;
    const written = await this.guard(
      'SET',
      async () => {
        // Known truth needs no order between its index and its write: both are done before this
        // returns, so any later invalidation finds the entry (see indexTags).
        const [, written] = await Promise.all([
          this.indexTags(id, tagIds, ttlMs),
          SCRIPTS.set.run(this.redis, [this.keys.entry(id), this.keys.lock(id)], [payload, ttlMs]),
        ]);
        return written;
      },
      0,
    );
    return written === 1;
  }

  /**
   * Writes a committed version (see set-versioned-3.lua): `'written'`, `'older'` when a newer version
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
    const keys = [this.keys.entry(id), this.keys.lock(id), this.keys.version(id)];
    const landed = await this.guard(
      'SET',
      async () => {
        // Known truth, as in `set`. A refused write leaves its index members behind: they only make
        // a later invalidation delete one entry more.
        const [, landed] = await Promise.all([
          this.indexTags(id, tagIds, Math.max(ttlMs, 1)),
          SCRIPTS.setVersioned.run(this.redis, keys, [payload, Math.max(ttlMs, 1), version, Math.max(ttlMs, VERSION_TTL_MS)]),
        ]);
        return landed;
      },
      undefined,
    );
    if (landed === undefined) return undefined;
    return landed === 1 ? 'written' : landed === 2 ? 'unknown' : 'older';
  }

  /** See evict-older.lua, run per hash slot; `undefined` if Redis failed. */
  async evictOlder(versions: ReadonlyMap<string, number>): Promise<number | undefined> {
    if (versions.size === 0) return 0;
    const groups = groupBySlot(this.redis, [...versions], ([id]) => this.keys.entry(id));
    return this.guard(
      'EVALSHA',
      () =>
        sum(
          groups.map((group) =>
            SCRIPTS.evictOlder.run(
              this.redis,
              group.flatMap(([id]) => [this.keys.entry(id), this.keys.lock(id), this.keys.version(id)]),
              [...group.map(([, version]) => version), VERSION_TTL_MS],
            ),
          ),
        ),
      undefined,
    );
  }

  /**
   * Fills the entry from a load: `true` if it landed, `false` if an invalidation or a newer
   * write came first, `undefined` if Redis failed. The tags are checked and indexed first, each in
   * its own slot (index-tag-2.lua), then the entry lands if the load still holds its lock
   * (set-if-locked-2.lua): an invalidation of a tag in between deletes that lock.
   */
  async setIfLocked(id: string, payload: string, ttlMs: number, tagIds: readonly string[], lock: Lock): Promise<boolean | undefined> {
    const keys = [this.keys.entry(id), this.keys.lock(id)];
    const landed = await this.guard(
      'SET',
      async () => {
        if (!(await this.indexTags(id, tagIds, Math.max(ttlMs, 1), lock))) {
          await SCRIPTS.releaseLock.run(this.redis, [this.keys.lock(id)], [lock.token]);
          return 0;
        }
        return SCRIPTS.setIfLocked.run(this.redis, keys, [payload, Math.max(ttlMs, 1), lock.token]);
      },
      undefined,
    );
    return landed === undefined ? undefined : landed === 1;
  }

  /**
   * Adds the entry to the index of each tag (index-tag-2.lua; each tag is in its own slot, maybe on
   * another node than the entry). A write of known truth runs it beside the write: a tag
   * invalidation that overlaps the call may come before or after it, as with any concurrent call,
   * and one that starts after the call finds the entry. A load's value (`lock`) runs it first, and
   * each tag is checked too: `false` if one was invalidated since the load started. A tag the lock
   * armed is compared with its own node's time; one known only from the value with the lock's
   * time, less the clock difference allowed between cluster nodes.
   */
  private async indexTags(id: string, tagIds: readonly string[], ttlMs: number, lock?: Lock): Promise<boolean> {
    if (tagIds.length === 0) return true;
    const entry = this.keys.entry(id);
    const answers = await Promise.all(
      tagIds.map((tag) => {
        const armedAt = lock?.armedTags?.get(tag);
        const startedAt = armedAt ?? (lock ? lock.startedAt - this.clockSkewMs : 0);
        return SCRIPTS.indexTag.run(
          this.redis,
          [this.keys.tag(tag), this.keys.tagStamp(tag)],
          [entry, ttlMs, lock ? 1 : 0, startedAt, armedAt === undefined ? 0 : 1, TAG_STAMP_TTL_MS],
        );
      }),
    );
    return answers.every((answer) => answer === 1);
  }

  /** Moves the expiry to `expiresAt` if that is later than the current one. */
  async extend(id: string, expiresAt: number): Promise<void> {
    await this.guard('PEXPIREAT', () => this.redis.pexpireat(this.keys.entry(id), expiresAt, 'GT'), 0);
  }

  /** Deletes entries and the locks of their running loads; `undefined` if Redis failed. */
  async delete(ids: readonly string[]): Promise<number | undefined> {
    if (ids.length === 0) return 0;
    return this.guard('UNLINK', () => this.deleteEntries(ids), undefined);
  }

  /** delete.lua per hash slot. */
  private deleteEntries(ids: readonly string[]): Promise<number> {
    const groups = groupBySlot(this.redis, ids, (id) => this.keys.entry(id));
    return sum(
      groups.map((group) =>
        SCRIPTS.delete.run(
          this.redis,
          group.flatMap((id) => [this.keys.entry(id), this.keys.lock(id)]),
          [],
        ),
      ),
    );
  }

  /**
   * Deletes hash objects (`cache.hash()`) of a namespace by id, leaving tombstones for fills still
   * running; `undefined` if Redis failed.
   */
  async deleteHashes(namespace: string, ids: readonly string[]): Promise<number | undefined> {
    if (ids.length === 0) return 0;
    const hashes = this.keys.hashPrefix(namespace);
    const tombstones = this.keys.hashTombstonePrefix(namespace);
    const groups = groupBySlot(this.redis, ids, (id) => hashObjectKey(hashes, id));
    return this.guard(
      'EVALSHA',
      () =>
        sum(
          groups.map((group) =>
            SCRIPTS.hashDelete.run(
              this.redis,
              group.flatMap((id) => [hashObjectKey(hashes, id), hashObjectKey(tombstones, id)]),
              [HASH_TOMBSTONE_TTL_MS],
            ),
          ),
        ),
      undefined,
    );
  }

  /** SCAN + UNLINK over the hash objects of a namespace whose id matches `idGlob`; `undefined` if Redis failed. */
  async deleteHashesMatching(namespace: string, idGlob: string): Promise<number | undefined> {
    return this.guard('SCAN', () => this.scanUnlink(this.keys.hashGlob(namespace, idGlob)), undefined);
  }

  /**
   * Runs a command of another part of the cache (hash objects) behind the same circuit breaker:
   * `fallback` when Redis fails or the breaker is open.
   */
  run<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    return this.guard(command, run, fallback);
  }

  /**
   * Stamps the tag first (so older loads cannot land with it), then empties its index in batches,
   * deleting each batch's entries and their locks in their own slots. Answers how many index
   * members were taken off.
   */
  async invalidateTag(tagId: string): Promise<number | undefined> {
    return this.guard(
      'EVALSHA',
      async () => {
        await SCRIPTS.stampTag.run(this.redis, [this.keys.tagStamp(tagId)], [TAG_STAMP_TTL_MS]);
        let removed = 0;
        for (;;) {
          const members = (await SCRIPTS.popTagBatch.run(this.redis, [this.keys.tag(tagId)], [TAG_BATCH])) as string[];
          await this.deleteEntries(members.map((key) => this.keys.idOfEntry(key)));
          removed += members.length;
          if (members.length < TAG_BATCH) return removed;
        }
      },
      undefined,
    );
  }

  /** SCAN + UNLINK in batches over entries matching `idGlob`, and over the locks of running loads. */
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

  /** SCAN over every primary (a cluster's keys are spread over them), UNLINK per hash slot. */
  private async scanUnlink(match: string): Promise<number> {
    let deleted = 0;
    for (const node of primaries(this.redis)) {
      for await (const keys of node.scanStream({ match, count: SCAN_BATCH }) as AsyncIterable<string[]>) {
        for (const group of groupBySlot(this.redis, keys, (key) => key)) deleted += await this.redis.unlink(...group);
      }
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

async function sum(counts: ReadonlyArray<Promise<unknown>>): Promise<number> {
  return (await Promise.all(counts)).reduce<number>((total, count) => total + Number(count), 0);
}
