import type { RedisClient } from '../layers/redis-client.js';
import { deserializeValue, serializeValue } from '../entry/serializer.js';
import { hashObjectKey } from '../keys/redis-keys.js';
import { SCRIPTS } from '../scripts/redis-script.js';
import { invalidInput, positiveMs, redisCall } from './structure-calls.js';

/** how long a delete is remembered against fills that started before it */
export const HASH_TOMBSTONE_TTL_MS = 60_000;

export interface HashCacheOptions {
  /** How long an object lives after `set`; `setField` does not extend it. */
  ttlMs: number;
  /** Where deletes leave their tombstones (see `fill`); default: the key prefix with `~gone:` after it. */
  tombstonePrefix?: string;
  /**
   * How commands reach Redis. `cache.hash()` runs them behind the cache's circuit breaker (a
   * failing Redis reads as a miss, never as an error) and makes sure an object whose write was
   * lost is deleted once Redis answers again. Standalone: commands run as they are, errors reach
   * the caller.
   */
  io?: HashCacheIo;
}

export interface HashCacheIo {
  /** `fallback` when the command fails or Redis is skipped. */
  run<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T>;
  /** A write of object `id` did not reach Redis: its older copy must go when Redis is back. */
  lost(id: string): void;
}

export type HashObject = Record<string, unknown>;

/**
 * Objects cached as Redis hashes, one hash per id and one JSON value per field, so that a
 * single field can be read or updated without moving the whole object.
 *
 * Ids are used as given: encode untrusted ones with `keyPart`. A field value that cannot be
 * parsed (corrupt, or written by someone else) reads as `undefined`, never as an error.
 */
export class HashCache {
  private readonly ttlMs: number;
  private readonly tombstonePrefix: string;
  private readonly io?: HashCacheIo;

  constructor(
    private readonly redis: RedisClient,
    /** The full key prefix of this cache, e.g. `cache:~hash:users:`. */
    readonly keyPrefix: string,
    options: HashCacheOptions,
  ) {
    this.ttlMs = positiveMs(options?.ttlMs, 'HashCache ttlMs');
    this.tombstonePrefix = options.tombstonePrefix ?? `${keyPrefix}~gone:`;
    this.io = options.io;
  }

  /**
   * `run`, behind the owner's breaker when there is one; standalone, a failure reaches the caller as
   * a `CacheUnavailableError`. `NaN` stands for "failed" where a number is expected.
   */
  private call<T>(command: string, run: () => Promise<T>, fallback: T): Promise<T> {
    return this.io ? this.io.run(command, run, fallback) : redisCall(run);
  }

  /**
   * Cache-aside for a whole object: `load` reads it (from the database), and it is stored unless
   * it was deleted meanwhile, so an object deleted while it was being read never comes back.
   */
  async fill(id: string | number, load: () => Promise<HashObject | null>): Promise<HashObject | null> {
    const tombstone = this.tombstone(id);
    const begun = await this.call('EVALSHA', () => SCRIPTS.hashFillBegin.run(this.redis, [tombstone], [HASH_TOMBSTONE_TTL_MS]), undefined);
    const object = await load();
    // Without its start (Redis time, the armed tombstone) there is no safe fill: the object is served, not stored.
    if (!object || begun === undefined) return object ?? null;
    const startedAt = Number(begun);
    const fields: string[] = [];
    for (const [field, value] of Object.entries(object)) {
      if (value !== undefined) fields.push(field, serializeValue(value));
    }
    await this.call('EVALSHA', () => SCRIPTS.hashFill.run(this.redis, [this.key(id), tombstone], [startedAt, this.ttlMs, ...fields]), 0);
    return object;
  }

  /**
   * Replaces the whole object in one script: no reader sees old and new fields mixed, and
   * fields the new object lacks are gone. Fields whose value is `undefined` are left out,
   * as JSON does; an object with no fields left is simply deleted.
   */
  async set(id: string | number, object: HashObject): Promise<void> {
    if (typeof object !== 'object' || object === null || Array.isArray(object)) {
      throw invalidInput('HashCache.set takes a plain object');
    }
    const key = this.key(id);
    const fields: string[] = [];
    for (const [field, value] of Object.entries(object)) {
      if (value !== undefined) fields.push(field, serializeValue(value));
    }
    const written = await this.call(
      'EVALSHA',
      async () => {
        await SCRIPTS.hashSet.run(this.redis, [key, this.tombstone(id)], [this.ttlMs, HASH_TOMBSTONE_TTL_MS, ...fields]);
        return true;
      },
      false,
    );
    if (!written) this.io?.lost(String(id));
  }

  /** The whole object, or `undefined` when it is not cached. */
  async get<T extends HashObject = HashObject>(id: string | number): Promise<T | undefined> {
    const raw = await this.call('HGETALL', () => this.redis.hgetall(this.key(id)), {} as Record<string, string>);
    // An empty reply means no such key: Redis never keeps an empty hash.
    if (Object.keys(raw).length === 0) return undefined;
    const entries: Array<[string, unknown]> = [];
    for (const [field, text] of Object.entries(raw)) {
      const value = parseField(text);
      if (value !== undefined) entries.push([field, value]);
    }
    // fromEntries defines own properties, so a field named `__proto__` stays a plain field.
    return Object.fromEntries(entries) as T;
  }

  /** One field, or `undefined` when the object or the field is not cached. */
  async getField<T = unknown>(id: string | number, field: string): Promise<T | undefined> {
    const text = await this.call('HGET', () => this.redis.hget(this.key(id), field), null);
    return text === null ? undefined : (parseField(text) as T | undefined);
  }

  /**
   * Updates one field of a cached object, keeping its TTL. Returns `false` (and writes
   * nothing) when the object is not cached: a partial object must not pose as a whole one.
   */
  async setField(id: string | number, field: string, value: unknown): Promise<boolean> {
    const key = this.key(id);
    const updated = await this.call(
      'EVALSHA',
      () => SCRIPTS.hashSetField.run(this.redis, [key, this.tombstone(id)], [field, serializeValue(value), HASH_TOMBSTONE_TTL_MS]),
      undefined,
    );
    if (updated === undefined) this.io?.lost(String(id));
    return updated === 1;
  }

  /** `true` when an object was cached. A fill that started before it will not store its object. */
  async delete(id: string | number): Promise<boolean> {
    const key = this.key(id);
    const deleted = await this.call(
      'EVALSHA',
      () => SCRIPTS.hashDelete.run(this.redis, [key, this.tombstone(id)], [HASH_TOMBSTONE_TTL_MS]),
      undefined,
    );
    if (deleted === undefined) this.io?.lost(String(id));
    return deleted === 1;
  }

  /** `prefix{id}`: the id is the hash tag, so that an object and its tombstone share a cluster slot. */
  private key(id: string | number): string {
    const valid = typeof id === 'string' ? id.length > 0 && id.length <= 1024 && !id.startsWith('}') : Number.isFinite(id);
    if (!valid) {
      throw invalidInput(
        `a HashCache id must be a string of 1 to 1024 characters not starting with '}', or a finite number; got ${String(id)}`,
      );
    }
    return hashObjectKey(this.keyPrefix, String(id));
  }

  private tombstone(id: string | number): string {
    this.key(id);
    return hashObjectKey(this.tombstonePrefix, String(id));
  }
}

function parseField(text: string): unknown {
  try {
    return deserializeValue(text);
  } catch {
    return undefined;
  }
}
