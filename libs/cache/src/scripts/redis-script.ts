import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../layers/redis-client.js';

const INCLUDE = /^--@include ([a-z0-9-]+)\s*$/gm;

/**
 * One Lua script of this folder (`<name>.lua`, its header naming KEYS and ARGV), read once and
 * run by SHA: EVALSHA, and on NOSCRIPT (a restarted or flushed Redis, a new replica) EVAL, which
 * loads it again. `--@include name` lines take `includes/name.lua` in.
 */
export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(readonly name: string) {
    this.lua = read(`${name}.lua`).replace(INCLUDE, (_line, include: string) => read(`includes/${include}.lua`));
    this.sha = createHash('sha1').update(this.lua).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

function read(file: string): string {
  return readFileSync(new URL(file, import.meta.url), 'utf8');
}

/** Every script the cache runs, loaded once per process. */
export const SCRIPTS = {
  set: new RedisScript('set-2'),
  setVersioned: new RedisScript('set-versioned-3'),
  evictOlder: new RedisScript('evict-older'),
  setIfLocked: new RedisScript('set-if-locked-2'),
  indexTag: new RedisScript('index-tag-2'),
  armTag: new RedisScript('arm-tag-1'),
  stampTag: new RedisScript('stamp-tag-1'),
  popTagBatch: new RedisScript('pop-tag-batch-1'),
  delete: new RedisScript('delete'),
  acquireLock: new RedisScript('acquire-lock-1'),
  extendLock: new RedisScript('extend-lock-1'),
  releaseLock: new RedisScript('release-lock-1'),
  hashSet: new RedisScript('hash-set-2'),
  hashSetField: new RedisScript('hash-set-field-2'),
  hashFillBegin: new RedisScript('hash-fill-begin-1'),
  hashFill: new RedisScript('hash-fill-2'),
  hashDelete: new RedisScript('hash-delete'),
} as const;
