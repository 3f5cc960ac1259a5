import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type CacheEnvelope } from '../entry/envelope.js';
import { decodeEnvelope } from '../entry/serializer.js';

// Sets the entry, adds it to each tag set, and makes each tag set live at least as long as it.
const SET_TAGGED = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[2])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1`;

// Removes every member of a tag set and the set itself, atomically; returns how many entries went.
const INVALIDATE_TAG = `
local members = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for i = 1, #members, 500 do
  deleted = deleted + redis.call('UNLINK', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return deleted`;

const WARN_INTERVAL_MS = 10_000;
const SCAN_BATCH = 1000;

/**
 * L2: envelopes in Redis under one key prefix. A failing Redis never fails a caller:
 * reads answer "miss", writes are dropped, and the failure is logged (at most every 10 s).
 */
export class RedisLayer {
  private readonly logger = new Logger('CacheRedis');
  private lastWarnAt = 0;

  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  /** The live envelope at `key`; a value that is not an envelope is deleted and reads as a miss. */
  async get(key: string): Promise<CacheEnvelope | undefined> {
    const fullKey = this.prefix + key;
    const raw = await this.guard('GET', () => this.redis.get(fullKey), null);
    if (raw === null) return undefined;
    const envelope = decodeEnvelope(raw);
    if (!envelope) {
      this.logger.warn(`removed an unreadable value at ${fullKey}`);
      await this.guard('UNLINK', () => this.redis.unlink(fullKey), 0);
    }
    return envelope;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.guard('EXISTS', () => this.redis.exists(this.prefix + key), 0)) === 1;
  }

  async set(key: string, payload: string, ttlMs: number, tags: readonly string[] = []): Promise<void> {
    if (ttlMs <= 0) return;
    const fullKey = this.prefix + key;
    if (tags.length === 0) {
      await this.guard('SET', () => this.redis.set(fullKey, payload, 'PX', ttlMs), null);
      return;
    }
    const keys = [fullKey, ...tags.map((tag) => this.tagKey(tag))];
    await this.guard('SET', () => this.redis.eval(SET_TAGGED, keys.length, ...keys, payload, ttlMs), null);
  }

  /** Moves the expiry to `expiresAt` if that is later than the current one. */
  async extend(key: string, expiresAt: number): Promise<void> {
    await this.guard('PEXPIREAT', () => this.redis.pexpireat(this.prefix + key, expiresAt, 'GT'), 0);
  }

  async delete(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.guard('UNLINK', () => this.redis.unlink(...keys.map((key) => this.prefix + key)), 0);
  }

  async invalidateTag(tag: string): Promise<number> {
    return this.guard('EVAL', async () => Number(await this.redis.eval(INVALIDATE_TAG, 1, this.tagKey(tag))), 0);
  }

  /** SCAN + UNLINK in batches; `match` is a Redis glob over the unprefixed key. */
  async deleteMatching(match: string): Promise<number> {
    return this.guard(
      'SCAN',
      async () => {
        let deleted = 0;
        const stream = this.redis.scanStream({ match: this.globPrefix() + match, count: SCAN_BATCH });
        for await (const keys of stream as AsyncIterable<string[]>) {
          if (keys.length) deleted += await this.redis.unlink(...keys);
        }
        return deleted;
      },
      0,
    );
  }

  private tagKey(tag: string): string {
    // '~' cannot start a namespace, so tag sets never collide with entries.
    return `${this.prefix}~tag:${tag}`;
  }

  private globPrefix(): string {
    return this.prefix.replace(/[*?[\]\\]/g, '\\$&');
  }

  private async guard<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const now = Date.now();
      if (now - this.lastWarnAt >= WARN_INTERVAL_MS) {
        this.lastWarnAt = now;
        this.logger.warn(`Redis ${command} failed, continuing without L2: ${(error as Error).message}`);
      }
      return fallback;
    }
  }
}
