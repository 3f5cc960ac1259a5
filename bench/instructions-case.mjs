// One case of bench/instructions.bench.ts, run under callgrind: `node --single-threaded
// bench/instructions-case.mjs <case> <ops>` sets the case up, warms it up with WARMUP_OPS calls,
// then makes <ops> more and exits. The driver runs each case twice, with two values of <ops>, and
// divides the difference of the two instruction counts by the difference of the ops: start-up,
// set-up and warm-up cancel out. No case does I/O while measured, so the count is the same from
// run to run: L1 hits, and L2 hits whose Redis client answers at once from memory (a real L2 hit's
// count moves with how replies happen to arrive, which decides how reads batch and how often the
// event loop turns). Plain JavaScript on the built package
// (`npm run build`), so that no TypeScript compiler runs under callgrind. The same user record,
// keys and concurrency as bench/cache-throughput.bench.ts.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { CacheModule, CacheService } from '@cachekit/cache';
import { userRecord } from './user-record.mjs';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONCURRENCY = 64;
const WARMUP_OPS = 64_000;
const TTL_MS = 10 * 60_000;
const KEY_PREFIX = `bench:ic:${randomBytes(4).toString('hex')}:`;

const user = userRecord();
const keys = Array.from({ length: CONCURRENCY }, (_, i) => `user:${i}`);
const load = () => structuredClone(user);
const hit = { ttl: TTL_MS };

/** Each case: its set-up, answering the call to measure (one key per caller) and what closes it. */
const CASES = {
  'lru-cache get': async () => {
    const lru = new LRUCache({ max: 10_000 });
    for (const key of keys) lru.set(key, user);
    return { call: async (key) => lru.get(key) };
  },
  'CacheService.getOrSet, L1 hit (copies)': () => cacheService({ l1: { maxTtl: TTL_MS } }),
  "CacheService.getOrSet, L1 hit, l1 { values: 'frozen' }": () => cacheService({ l1: { maxTtl: TTL_MS, values: 'frozen' } }),
  'cache-manager wrap, in-memory Keyv': async () => {
    const cache = createCache();
    return { call: (key) => cache.wrap(key, load, TTL_MS), close: () => cache.disconnect() };
  },
  'JSON.parse of the stored text, answered at once': async () => {
    const text = await storedText();
    return { call: () => Promise.resolve(text).then((stored) => JSON.parse(stored)) };
  },
  'CacheService.getOrSet, L2 hit (l1: false), Redis answered at once': async () => {
    const l2 = await cacheService({ l1: false });
    for (const key of keys) await l2.call(key);
    // The cache's own client answers from memory: what is counted is the JavaScript of the hit
    // (a private field is reached for that: this is a measurement, not an API).
    const redis = l2.context.get(CacheService).runtime.redis;
    const texts = new Map(await Promise.all(keys.map(async (key) => [redisKey(key), await redis.get(redisKey(key))])));
    redis.get = (key) => Promise.resolve(texts.get(key) ?? null);
    redis.mget = (names) => Promise.resolve(names.map((key) => texts.get(key) ?? null));
    return l2;
  },
};

const redisKey = (key) => `${KEY_PREFIX}{default:${key}}`;

/** The text this library stores in Redis for the user record. */
async function storedText() {
  const l2 = await cacheService({ l1: false });
  await l2.call(keys[0]);
  const text = await l2.context.get(CacheService).runtime.redis.get(redisKey(keys[0]));
  await l2.close();
  return text;
}

async function cacheService(options) {
  const context = await NestFactory.createApplicationContext(
    CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, bus: false, ...options }),
    { logger: ['error', 'warn'] },
  );
  const cache = context.get(CacheService);
  return { call: (key) => cache.getOrSet(key, load, hit), close: () => context.close(), context };
}

async function run(call, ops) {
  await Promise.all(
    keys.map(async (key) => {
      for (let i = 0; i < ops / CONCURRENCY; i++) await call(key);
    }),
  );
}

const [name, opsText] = process.argv.slice(2);
if (!Object.hasOwn(CASES, name) || !(Number(opsText) >= 0)) {
  console.error(`usage: instructions-case.mjs <case> <ops>; cases: ${Object.keys(CASES).join(' | ')}`);
  process.exit(2);
}
const { call, close } = await CASES[name]();
await run(call, WARMUP_OPS);
await run(call, Number(opsText));
await close?.();
const cleanup = new Redis(REDIS_URL);
for await (const found of cleanup.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 })) if (found.length) await cleanup.unlink(...found);
await cleanup.quit();
