import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type CacheEnvelope } from '../entry/envelope.js';
import { decodeEnvelope } from '../entry/serializer.js';
import { escapeGlob } from '../keys/key-part.js';
import { DELETE_HASHES, HASH_TOMBSTONE_TTL_MS } from '../structures/hash-cache.js';
import type { RedisKeys } from '../keys/redis-keys.js';

// Adds KEYS[1] to each tag index in KEYS[from..to], scored by when the entry expires, drops the
// members that expired already (so an index stays proportional to its live entries however
// often it is written), and keeps each index alive at least `ttl` ms.
const INDEX_TAGS = `
local function index_tags(from, to, ttl)
  if from > to then return end
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  for i = from, to do
    redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end`;

// A write of known truth (write-through, set): it also ends any lease, so an older load cannot land after it.
// KEYS: entry, lock, tag sets...   ARGV: payload, ttl
const SET = `${INDEX_TAGS}
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
index_tags(3, #KEYS, tonumber(ARGV[2]))
return 1`;

// Write-through of a committed row version: lands unless a newer version was written (or committed,
// see EVICT_OLDER); the same version again carries the same row. The entry's own version counts
// too, so an evicted version floor does not let an older row replace a newer cached one.
// KEYS: entry, lock, version, tag sets...   ARGV: payload, ttl, version, version ttl
const SET_VERSIONED = `${INDEX_TAGS}
local written = tonumber(redis.call('GET', KEYS[3]) or '-1')
if written > tonumber(ARGV[3]) then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local ok, envelope = pcall(cjson.decode, current)
  local held = ok and type(envelope) == 'table' and tonumber(envelope.g)
  if held and held > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
index_tags(4, #KEYS, tonumber(ARGV[2]))
return 1`;

// A change committed elsewhere, with the version it produced: raises each entry's version floor
// (older write-throughs arriving later are refused) and deletes the entry unless it already holds
// that version or a newer one; ends running loads either way. KEYS: (entry, lock, version) triples.
// ARGV: versions, version ttl. Answers how many entries went.
const EVICT_OLDER = `
local deleted = 0
local n = #KEYS / 3
for i = 1, n do
  local entry, lock, floor = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local version = tonumber(ARGV[i])
  if version > tonumber(redis.call('GET', floor) or '-1') then redis.call('SET', floor, ARGV[i], 'PX', ARGV[n + 1]) end
  local text = redis.call('GET', entry)
  if text then
    local ok, envelope = pcall(cjson.decode, text)
    local held = ok and type(envelope) == 'table' and tonumber(envelope.g)
    if not held or held < version then deleted = deleted + redis.call('UNLINK', entry) end
  end
  redis.call('UNLINK', lock)
end
return deleted`;

// The end of a load: lands only if the load still holds its lease and none of its tags was
// invalidated since it started. KEYS: entry, lock, tag sets (n), tag stamps (n)
// ARGV: payload, ttl, token, started (Redis ms), n
const SET_LEASED = `${INDEX_TAGS}
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
local n = tonumber(ARGV[5])
for i = 1, n do
  local stamp = redis.call('GET', KEYS[2 + n + i])
  if stamp and tonumber(stamp) >= tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[2])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
index_tags(3, 2 + n, tonumber(ARGV[2]))
return 1`;

// Stamps a tag with Redis time: loads that started before it must not land with this tag.
// KEYS: tag stamp   ARGV: stamp ttl
const STAMP_TAG = `
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), 'PX', ARGV[1])
return 1`;

// Takes up to ARGV[2] members off a tag index and deletes them with their leases; answers how many.
// Batches keep each call short however large the tag. KEYS: tag index   ARGV: key prefix, batch size
const INVALIDATE_TAG_BATCH = `
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[2])
if #popped == 0 then return 0 end
local keys = {}
for i = 1, #popped, 2 do
  keys[#keys + 1] = popped[i]
  keys[#keys + 1] = ARGV[1] .. '~lock:' .. string.sub(popped[i], #ARGV[1] + 1)
end
redis.call('UNLINK', unpack(keys))
return #popped / 2`;

// Deletes entries (odd KEYS) and the leases of their running loads (even KEYS); counts entries.
const DELETE = `
local deleted = 0
for i = 1, #KEYS, 2 do
  deleted = deleted + redis.call('UNLINK', KEYS[i])
  redis.call('UNLINK', KEYS[i + 1])
end
return deleted`;

const ACQUIRE = `
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local t = redis.call('TIME')
return { ok and 1 or 0, t[1] * 1000 + math.floor(t[2] / 1000) }`;

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const WARN_INTERVAL_MS = 10_000;
/** consecutive failures that open the circuit breaker, and how long it then skips Redis */
const BREAKER_THRESHOLD = 3;
const BREAKER_COOLDOWN_MS = 1_000;
const SCAN_BATCH = 1000;
const TAG_BATCH = 500;
/** how long a tag invalidation is remembered against loads that started before it */
const TAG_STAMP_TTL_MS = 10 * 60_000;
/** how long the highest written version of an entry is remembered */
const VERSION_TTL_MS = 24 * 60 * 60_000;

export interface Lease {
  token: string;
  /** Redis time (ms) when the lease was taken */
  startedAt: number;
}

/**
 * L2: envelopes in Redis, their tag index and the leases of running loads. A failing Redis
 * never fails a caller: reads answer "miss", writes are dropped, and the failure is logged at
 * most every 10 s. Methods that must tell "failed" from "no" answer `undefined` for failed.
 * After a few failures in a row a circuit breaker skips Redis for a second, so a hanging Redis
 * costs each request nothing instead of a command timeout per command.
 */
export class RedisLayer {
  private readonly logger = new Logger('CacheRedis');
  private lastWarnAt = 0;
  private consecutiveFailures = 0;
  private openUntil = 0;
  private halfOpen = false;

  constructor(
    readonly redis: Redis,
    readonly keys: RedisKeys,
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

  async exists(id: string): Promise<boolean> {
    return (await this.guard('EXISTS', () => this.redis.exists(this.keys.entry(id)), 0)) === 1;
  }

  /** Writes known truth; ends any running load's lease. `false` when Redis did not take it. */
  async set(id: string, payload: string, ttlMs: number, tagIds: readonly string[] = []): Promise<boolean> {
    if (ttlMs <= 0) return true;
    const keys = [this.keys.entry(id), this.keys.lock(id), ...tagIds.map((tag) => this.keys.tag(tag))];
    return (await this.guard('SET', () => this.redis.eval(SET, keys.length, ...keys, payload, ttlMs), 0)) === 1;
  }

  /**
   * Writes a committed version: `true` if it landed, `false` if an equal or newer version was
   * written before, `undefined` if Redis failed.
   */
  async setVersioned(id: string, payload: string, ttlMs: number, tagIds: readonly string[], version: number): Promise<boolean | undefined> {
    const keys = [this.keys.entry(id), this.keys.lock(id), this.keys.version(id), ...tagIds.map((tag) => this.keys.tag(tag))];
    const landed = await this.guard(
      'SET',
      () => this.redis.eval(SET_VERSIONED, keys.length, ...keys, payload, Math.max(ttlMs, 1), version, Math.max(ttlMs, VERSION_TTL_MS)),
      undefined,
    );
    return landed === undefined ? undefined : landed === 1;
  }

  /** See EVICT_OLDER; `undefined` if Redis failed. */
  async evictOlder(versions: ReadonlyMap<string, number>): Promise<number | undefined> {
    if (versions.size === 0) return 0;
    const keys = [...versions.keys()].flatMap((id) => [this.keys.entry(id), this.keys.lock(id), this.keys.version(id)]);
    return this.guard(
      'EVAL',
      async () => Number(await this.redis.eval(EVICT_OLDER, keys.length, ...keys, ...versions.values(), VERSION_TTL_MS)),
      undefined,
    );
  }

  /**
   * Fills the entry from a load: `true` if it landed, `false` if an invalidation or a newer
   * write came first, `undefined` if Redis failed.
   */
  async setLeased(id: string, payload: string, ttlMs: number, tagIds: readonly string[], lease: Lease): Promise<boolean | undefined> {
    const keys = [
      this.keys.entry(id),
      this.keys.lock(id),
      ...tagIds.map((tag) => this.keys.tag(tag)),
      ...tagIds.map((tag) => this.keys.tagStamp(tag)),
    ];
    const landed = await this.guard(
      'SET',
      () => this.redis.eval(SET_LEASED, keys.length, ...keys, payload, Math.max(ttlMs, 1), lease.token, lease.startedAt, tagIds.length),
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
    return this.guard('UNLINK', async () => Number(await this.redis.eval(DELETE, keys.length, ...keys)), undefined);
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
    return this.guard(
      'EVAL',
      async () => Number(await this.redis.eval(DELETE_HASHES, keys.length, ...keys, HASH_TOMBSTONE_TTL_MS)),
      undefined,
    );
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
      'EVAL',
      async () => {
        await this.redis.eval(STAMP_TAG, 1, this.keys.tagStamp(tagId), TAG_STAMP_TTL_MS);
        let removed = 0;
        for (;;) {
          const batch = Number(await this.redis.eval(INVALIDATE_TAG_BATCH, 1, this.keys.tag(tagId), this.keys.prefix, TAG_BATCH));
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

  /** `undefined` when Redis failed: the caller then loads without a lease. */
  async acquire(id: string, token: string, ttlMs: number): Promise<{ acquired: boolean; startedAt: number } | undefined> {
    const answer = await this.guard(
      'EVAL',
      async () => (await this.redis.eval(ACQUIRE, 1, this.keys.lock(id), token, ttlMs)) as [number, number],
      undefined,
    );
    return answer && { acquired: answer[0] === 1, startedAt: Number(answer[1]) };
  }

  async extendLease(id: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.guard('EVAL', () => this.redis.eval(EXTEND, 1, this.keys.lock(id), token, ttlMs), 0)) === 1;
  }

  async releaseLease(id: string, token: string): Promise<void> {
    await this.guard('EVAL', () => this.redis.eval(RELEASE, 1, this.keys.lock(id), token), 0);
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
    return Date.now() < this.openUntil;
  }

  private async guard<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    const now = Date.now();
    if (now < this.openUntil) return fallback;
    if (this.openUntil > 0) {
      // The cool-down is over: this call is the trial.
      this.openUntil = 0;
      this.halfOpen = true;
    }
    try {
      const result = await run();
      this.consecutiveFailures = 0;
      this.halfOpen = false;
      return result;
    } catch (error) {
      if (this.halfOpen || ++this.consecutiveFailures >= BREAKER_THRESHOLD) {
        this.openUntil = Date.now() + BREAKER_COOLDOWN_MS;
        this.consecutiveFailures = 0;
        this.halfOpen = false;
      }
      if (now - this.lastWarnAt >= WARN_INTERVAL_MS) {
        this.lastWarnAt = now;
        this.logger.warn(`Redis ${command} failed, continuing without L2: ${(error as Error).message}`);
      }
      return fallback;
    }
  }
}
