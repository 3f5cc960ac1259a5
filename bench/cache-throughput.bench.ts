/**
 * Throughput of CacheService hits beside its peers (cache-manager 7 on Keyv, bentocache) and the
 * bare clients they all sit on, each group against its baseline measured in the same run:
 * an L1 hit against a bare `lru-cache` get, an L2 hit against a bare ioredis GET of the same key,
 * 64 callers in flight (each awaiting its own calls, one key each) and one caller at a time.
 * Every peer is set up the way its README or docs recommend, keeps its keys under this run's
 * prefix, and is checked to answer from the layer its row names before anything is measured.
 * Run with `npm run bench`; needs Redis at REDIS_URL (default redis://127.0.0.1:6379).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout } from 'node:timers/promises';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { createKeyv } from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { type CacheEntryOptions, CacheModule, type CacheModuleOptions, CacheService } from '@cachekit/cache';
import { type UserRecord as User, userRecord } from './user-record.mjs';
import {
  check,
  concurrently,
  CONCURRENCY,
  type Group,
  machine,
  measure,
  type Result,
  SAMPLE_MS,
  SAMPLES,
  sequentially,
  table,
} from './harness.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;
const TTL = '10m';
const TTL_MS = 10 * 60_000;

const user = userRecord();

/** What a bare GET's text costs to turn into a value: the floor under every cache's L2 hit (the reference rows). */
function parsed(text: string | null): unknown {
  return JSON.parse(text!);
}

/** Loader calls per path: a hit never calls its loader, so a count that moves while hits are measured is a setup bug. */
const loads = new Map<string, number>();

function loaderFor(path: string): () => User {
  loads.set(path, 0);
  return () => {
    loads.set(path, loads.get(path)! + 1);
    return structuredClone(user);
  };
}

async function cacheContext(options: Partial<CacheModuleOptions>): Promise<INestApplicationContext> {
  const module = CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, ...options });
  // abortOnError: a refused option must reach the caller as an error, not abort the process.
  return NestFactory.createApplicationContext(module, { logger: ['error', 'warn'], abortOnError: false });
}

async function deleteBenchKeys(redis: Redis): Promise<number> {
  let deleted = 0;
  for await (const keys of redis.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) deleted += await redis.unlink(...keys);
  }
  return deleted;
}

async function countKeys(redis: Redis, prefix: string): Promise<number> {
  let count = 0;
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>) count += keys.length;
  return count;
}

/** The layer bentocache reports for one call (its `cache:hit` event), listened to only for that call. */
async function bentoLayer(bento: BentoCache<any>, call: () => Promise<unknown>): Promise<string> {
  let layer = 'none (a miss)';
  const listener = (event: { layer?: string }) => void (layer = event.layer ?? 'unknown');
  bento.on('cache:hit', listener);
  try {
    await call();
  } finally {
    bento.off('cache:hit', listener);
  }
  return layer;
}

/** What two hits on one key hand their callers: one shared object or a copy each, and whether a Date survives. */
async function handedOut(path: string, hit: () => Promise<User>): Promise<string> {
  const [a, b] = [await hit(), await hit()];
  const sharing = a === b ? (Object.isFrozen(a) ? 'one shared frozen object' : 'one shared mutable object') : 'a copy each';
  const createdAt = a.createdAt instanceof Date ? 'a Date' : `a ${typeof a.createdAt}`;
  return `| ${path} | ${sharing} | ${createdAt} |`;
}

function version(name: string): string {
  const manifest = readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8');
  return `${name} ${(JSON.parse(manifest) as { version: string }).version}`;
}

async function main(): Promise<void> {
  // No retries: without Redis the bench should fail at once, not wait for it.
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  const pipelined = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null, enableAutoPipelining: true });
  await Promise.all([redis.connect(), pipelined.connect()]);
  const closers: Array<() => Promise<unknown>> = [() => redis.quit(), () => pipelined.quit()];
  try {
    const workerKeys = Array.from({ length: CONCURRENCY }, (_, worker) => `user:${worker}`);
    const hit: CacheEntryOptions<User> = { ttl: TTL };

    // This library: L1 entries outlive the run (maxTtl), so every measured call is an L1 hit (checked with stats()).
    const open = async (options: Partial<CacheModuleOptions>) => {
      const context = await cacheContext(options);
      closers.push(() => context.close());
      return context.get(CacheService);
    };
    const copies = await open({ l1: { maxTtl: TTL } });
    const remote = await open({ l1: false });
    const frozen = await open({ l1: { maxTtl: TTL, values: 'frozen' } });

    // The bare stores.
    const lru = new LRUCache<string, User>({ max: 10_000 });
    for (const key of workerKeys) lru.set(key, user);

    // cache-manager 7: createCache() keeps values in its default in-memory Keyv; on Redis, the store
    // @nestjs/cache-manager's docs name, createKeyv from @keyv/redis (node-redis), namespaced to this run.
    const managerMemory = createCache();
    const managerRedis = createCache({ stores: [createKeyv(REDIS_URL, { namespace: `${KEY_PREFIX}keyv` })] });
    const keyvErrors: unknown[] = [];
    managerRedis.stores[0].on('error', (error: unknown) => keyvErrors.push(error));
    closers.push(
      () => managerMemory.disconnect(),
      () => managerRedis.disconnect(),
    );

    // bentocache 1.6: an L1-only store on its memory driver and an L2-only store on its redis driver,
    // as its quick-setup page shows; the memory bounds are this library's L1 defaults.
    const bentoMemory = new BentoCache({
      default: 'memory',
      stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '64mb', maxItems: 10_000 })) },
    });
    const bentoRedis = new BentoCache({
      default: 'redis',
      prefix: `${KEY_PREFIX}bento`,
      stores: { redis: bentostore().useL2Layer(redisDriver({ connection: new Redis(REDIS_URL) })) },
    });
    closers.push(
      () => bentoMemory.disconnect(),
      () => bentoRedis.disconnect(),
    );

    const paths = {
      copies: { name: 'CacheService.getOrSet, L1 hit (copies)', load: loaderFor('copies') },
      frozen: { name: `CacheService.getOrSet, L1 hit, l1 { values: 'frozen' }`, load: loaderFor('frozen') },
      remote: { name: 'CacheService.getOrSet, L2 hit (l1: false)', load: loaderFor('remote') },
      managerMemory: { name: 'cache-manager wrap, in-memory Keyv (createCache())', load: loaderFor('managerMemory') },
      managerRedis: { name: 'cache-manager wrap, @keyv/redis (node-redis)', load: loaderFor('managerRedis') },
      bentoMemory: { name: 'bentocache getOrSet, L1 only (memory driver)', load: loaderFor('bentoMemory') },
      bentoRedis: { name: 'bentocache getOrSet, L2 only (redis driver, ioredis)', load: loaderFor('bentoRedis') },
    };
    const read = {
      copies: (key: string) => copies.getOrSet(key, paths.copies.load, hit),
      frozen: (key: string) => frozen.getOrSet(key, paths.frozen.load, hit),
      remote: (key: string) => remote.getOrSet(key, paths.remote.load, hit),
      managerMemory: (key: string) => managerMemory.wrap(key, paths.managerMemory.load, TTL_MS),
      managerRedis: (key: string) => managerRedis.wrap(key, paths.managerRedis.load, TTL_MS),
      bentoMemory: (key: string) => bentoMemory.getOrSet({ key, factory: paths.bentoMemory.load, ttl: TTL }),
      bentoRedis: (key: string) => bentoRedis.getOrSet({ key, factory: paths.bentoRedis.load, ttl: TTL }),
    };
    const running = Object.keys(read) as Array<keyof typeof read>;

    // Seed every path (at most one miss per key), then check each answers from the layer its row names.
    for (const key of workerKeys) for (const path of running) await read[path](key);
    // A seeding write reaches the other contexts' L1 as an invalidation over the bus: let those
    // land, then read every key once more so that each L1 holds it again.
    await setTimeout(250);
    for (const key of workerKeys) for (const path of running) await read[path](key);
    // The three CacheService paths share one key space in Redis: the first to miss loads, the others read L2.
    for (const path of running) check(loads.get(path)! <= CONCURRENCY, `${path}: ${loads.get(path)} loads to seed ${CONCURRENCY} keys`);
    for (const [name, cache] of [
      ['copies', copies],
      ['frozen', frozen],
      ['remote', remote],
    ] as const) {
      const lookup = await cache.getOrSetWithStatus('user:1', paths[name].load, hit);
      const layer = name === 'remote' ? 'l2' : 'l1';
      check(lookup.layer === layer, `${name}: expected an ${layer} hit, got ${lookup.status} from ${lookup.layer}`);
      check(lookup.value.createdAt instanceof Date, `${name}: a cached Date should come back as a Date`);
    }
    check(Object.isFrozen(await read.frozen('user:1')), `l1 { values: 'frozen' }: a hit is not frozen`);
    check((await bentoLayer(bentoMemory, () => read.bentoMemory('user:1'))) === 'l1', 'bentocache memory: expected an L1 hit');
    check((await bentoLayer(bentoRedis, () => read.bentoRedis('user:1'))) === 'l2', 'bentocache redis: expected an L2 hit');
    check(managerRedis.stores.length === 1 && managerMemory.stores.length === 1, 'cache-manager: one store each');
    // The peers' Redis keys are where this run deletes them, one per worker key.
    for (const prefix of [`${KEY_PREFIX}keyv`, `${KEY_PREFIX}bento`]) {
      const found = await countKeys(redis, prefix);
      check(found === CONCURRENCY, `${found} keys under ${prefix}, expected ${CONCURRENCY}`);
    }
    // The bare GETs read the very keys the service reads: same payload, same Redis.
    const redisKeys = workerKeys.map((key) => `${KEY_PREFIX}{default:${key}}`);
    const payload = await redis.get(redisKeys[1]);
    check(payload !== null, `no value at ${redisKeys[1]}; has the Redis key layout changed?`);
    const stored = {
      keyv: await redis.strlen(`${KEY_PREFIX}keyv::user:1`),
      bento: await redis.strlen(`${KEY_PREFIX}bento:user:1`),
    };
    check(stored.keyv > 0 && stored.bento > 0, `the peers' key layout has changed: ${JSON.stringify(stored)}`);
    const semantics = [
      await handedOut('lru-cache get', async () => lru.get('user:1')!),
      ...(await Promise.all(running.map((path) => handedOut(paths[path].name, () => read[path]('user:1'))))),
    ];

    const loadsBefore = new Map(loads);
    const caches = [copies, frozen, remote];
    const statsBefore = await Promise.all(caches.map((cache) => cache.stats()));

    const perWorker = (path: keyof typeof read) => concurrently((worker) => read[path](workerKeys[worker]));
    const oneByOne = (path: keyof typeof read) => sequentially(() => read[path]('user:1'));
    const groups: Array<{ title: string; cases: Group }> = [
      {
        title: `L1 hit, ${CONCURRENCY} callers in flight (one key each)`,
        cases: [
          { name: `lru-cache get, ${CONCURRENCY} in flight`, run: concurrently(async (worker) => lru.get(workerKeys[worker])) },
          { name: paths.copies.name, run: perWorker('copies') },
          { name: paths.frozen.name, run: perWorker('frozen') },
          { name: paths.managerMemory.name, run: perWorker('managerMemory') },
          { name: paths.bentoMemory.name, run: perWorker('bentoMemory') },
        ],
      },
      {
        title: `L2 hit, ${CONCURRENCY} callers in flight (one key each)`,
        cases: [
          { name: 'ioredis GET, enableAutoPipelining', run: concurrently((worker) => pipelined.get(redisKeys[worker])) },
          { name: 'ioredis GET, no auto-pipelining (reference)', run: concurrently((worker) => redis.get(redisKeys[worker])) },
          {
            name: 'ioredis GET + JSON.parse, enableAutoPipelining (reference: the parse every cache must do)',
            run: concurrently((worker) => pipelined.get(redisKeys[worker]).then(parsed)),
          },
          { name: paths.remote.name, run: perWorker('remote') },
          { name: paths.managerRedis.name, run: perWorker('managerRedis') },
          { name: paths.bentoRedis.name, run: perWorker('bentoRedis') },
        ],
      },
      {
        title: 'L2 hit, one caller at a time',
        cases: [
          { name: 'ioredis GET, sequential', run: sequentially(() => redis.get(redisKeys[1])) },
          { name: 'ioredis GET + JSON.parse, sequential (reference)', run: sequentially(() => redis.get(redisKeys[1]).then(parsed)) },
          { name: paths.remote.name, run: oneByOne('remote') },
          { name: paths.managerRedis.name, run: oneByOne('managerRedis') },
          { name: paths.bentoRedis.name, run: oneByOne('bentoRedis') },
        ],
      },
    ];

    const results: Result[][] = [];
    for (const { cases } of groups) results.push(await measure(cases));

    for (const [path, before] of loadsBefore) {
      check(loads.get(path) === before, `${path}: the loader ran ${loads.get(path)! - before} times while only hits were measured`);
    }
    const statsAfter = await Promise.all(caches.map((cache) => cache.stats()));
    for (const [i, cache] of caches.entries()) {
      const [before, after] = [statsBefore[i].total, statsAfter[i].total];
      const name = cache === remote ? 'remote' : cache === copies ? 'copies' : 'frozen';
      check(after.misses === before.misses && after.stale === before.stale, `${name}: misses or stale answers while hits were measured`);
      if (cache === remote) check(after.hits.l1 === 0, `remote: ${after.hits.l1} L1 hits with l1: false`);
      else check(after.hits.l2 === before.hits.l2, `${name}: ${after.hits.l2 - before.hits.l2} L2 reads while L1 hits were measured`);
    }
    check(keyvErrors.length === 0, `@keyv/redis reported ${keyvErrors.length} errors, e.g. ${String(keyvErrors[0])}`);

    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    console.log(`\n${machine()}, Redis ${redisVersion} at ${REDIS_URL}`);
    console.log(['bentocache', 'cache-manager', 'keyv', '@keyv/redis', '@redis/client', 'lru-cache', 'ioredis'].map(version).join(', '));
    console.log(
      `value: a user record; bytes stored in Redis per key: this library ${payload.length}, ` +
        `cache-manager/Keyv ${stored.keyv}, bentocache ${stored.bento}; ` +
        `median of ${SAMPLES} interleaved ${SAMPLE_MS} ms samples per case; sample range = (max - min) / median`,
    );
    for (const [i, { title }] of groups.entries()) console.log(`\n### ${title}\n\n${table(results[i])}`);
    console.log(`\n### What a hit hands out (two hits on one key, checked in this run)\n`);
    console.log(['| path | the two callers get | createdAt comes back as |', '|---|---|---|', ...semantics].join('\n'));
  } finally {
    process.stderr.write(`deleted ${await deleteBenchKeys(redis)} bench keys\n`);
    for (const close of closers.reverse()) await close();
  }
}

await main();
