/**
 * What a Redis Cluster costs the cache, against a single node in the same run: an L2 hit and a
 * write-through (one versioned write with a tag: the tag index in its slot, then the entry in
 * its own), each with 64 calls in flight. The cluster is 3 primaries + 3 replicas of local
 * `redis-server` processes on this machine (test/support/redis-topologies.ts), the single node is
 * the Redis at REDIS_URL: both on loopback, so the ratio shows the client-side cost of the
 * cluster (slot routing, one connection per primary), not network hops.
 * Run with `npm run bench:cluster`.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { type CacheEntryOptions, CacheModule, type CacheModuleOptions, CacheService } from '@cachekit/cache';
import { Redis } from 'ioredis';
import { startCluster } from '../test/support/redis-topologies.js';
import { check, concurrently, CONCURRENCY, type Group, measure, type Result, SAMPLE_MS, SAMPLES, table } from './harness.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:${randomBytes(4).toString('hex')}:`;

interface Row {
  id: number;
  name: string;
  version: number;
}

async function cacheOn(redis: CacheModuleOptions['redis']): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(CacheModule.forRoot({ redis, keyPrefix: KEY_PREFIX, l1: false }), {
    logger: ['error', 'warn'],
  });
}

async function main(): Promise<void> {
  const cluster = await startCluster();
  const contexts: INestApplicationContext[] = [];
  const single = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  try {
    await single.connect();
    contexts.push(await cacheOn({ url: REDIS_URL }), await cacheOn({ cluster: { nodes: cluster.nodes } }));
    const [onSingle, onCluster] = contexts.map((context) => context.get(CacheService).namespace('rows'));
    const keys = Array.from({ length: CONCURRENCY }, (_, worker) => `row:${worker}`);
    const hit: CacheEntryOptions<Row> = { ttl: '10m' };
    let loads = 0;
    const load = (id: number) => async () => {
      loads++;
      return { id, name: `row ${id}`, version: 1 };
    };
    for (const cache of [onSingle, onCluster]) {
      for (const [i, key] of keys.entries()) await cache.getOrSet(key, load(i), hit);
      const lookup = await cache.getOrSetWithStatus(keys[1], load(1), hit);
      check(lookup.layer === 'l2', `expected an L2 hit, got ${lookup.status} from ${lookup.layer}`);
    }
    const loadsBefore = loads;
    const versions = [0, 0].map(() => new Array<number>(CONCURRENCY).fill(1));
    const writeThrough = (cache: typeof onSingle, own: number[]) =>
      concurrently(async (worker) => {
        const version = ++own[worker];
        await cache.writeThrough(keys[worker], async () => ({ id: worker, name: `row ${worker}`, version }), {
          ttl: '10m',
          tags: ['rows'],
          version: (row) => row.version,
        });
      });

    const groups: Group[] = [
      [
        { name: `L2 hit, single node, ${CONCURRENCY} in flight`, run: concurrently((w) => onSingle.getOrSet(keys[w], load(w), hit)) },
        { name: `L2 hit, cluster, ${CONCURRENCY} in flight`, run: concurrently((w) => onCluster.getOrSet(keys[w], load(w), hit)) },
      ],
      [
        { name: `write-through with a tag, single node, ${CONCURRENCY} in flight`, run: writeThrough(onSingle, versions[0]) },
        { name: `write-through with a tag, cluster, ${CONCURRENCY} in flight`, run: writeThrough(onCluster, versions[1]) },
      ],
    ];
    const results: Result[] = [];
    for (const group of groups) results.push(...(await measure(group)));
    check(loads === loadsBefore, `the loader ran ${loads - loadsBefore} times while only hits and writes were measured`);

    const redisVersion = /redis_version:(\S+)/.exec(await single.info('server'))?.[1] ?? 'unknown';
    console.log(
      `\nnode ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Redis ${redisVersion}: ` +
        `single node at ${REDIS_URL}, cluster of 3 primaries + 3 replicas on this machine`,
    );
    console.log(`median of ${SAMPLES} interleaved ${SAMPLE_MS} ms samples per case\n`);
    console.log(table(results));
  } finally {
    await Promise.all(contexts.map((context) => context.close()));
    let deleted = 0;
    for await (const batch of single.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (batch.length) deleted += await single.unlink(...batch);
    }
    process.stderr.write(`deleted ${deleted} bench keys on the single node; the cluster is thrown away\n`);
    single.disconnect();
    await cluster.stop();
  }
}

await main();
