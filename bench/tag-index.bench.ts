/**
 * Tag index size under short-TTL traffic: after a minute of writes with a 200 ms TTL, one tag,
 * how many members the tag index holds against the entries that are still alive. The baseline,
 * measured in the same run, is what an index without pruning holds: one member per write.
 * Run with `node --import ./bench/register.mjs bench/tag-index.bench.ts [seconds]` (default 60).
 */
import { randomBytes } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { CacheModule, CacheService } from '@cachekit/cache';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECONDS = Number(process.argv[2] ?? 60);
const PER_ROUND = 100;
const TTL_MS = 200;
const prefix = `bench:tags:${randomBytes(4).toString('hex')}:`;

const app = await NestFactory.createApplicationContext(
  CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: prefix, l1: false, bus: false }),
  { logger: ['error'] },
);
const redis = new Redis(REDIS_URL);
try {
  const cache = app.get(CacheService).namespace('traffic');
  let written = 0;
  const until = Date.now() + SECONDS * 1000;
  for (let round = 0; Date.now() < until; round++) {
    await Promise.all(
      Array.from({ length: PER_ROUND }, (_, i) => cache.set(`k:${round}:${i}`, { round, i }, { ttl: TTL_MS, tags: ['hot'] })),
    );
    written += PER_ROUND;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const members = await redis.zcard(`${prefix}~tagz:{traffic:hot}`);
  let live = 0;
  for await (const keys of redis.scanStream({ match: `${prefix}{traffic:k:*}`, count: 1000 }) as AsyncIterable<string[]>)
    live += keys.length;
  console.log(`\n${SECONDS} s of writes with a ${TTL_MS} ms TTL, one tag\n`);
  console.log('| index | members | live entries | members per live entry |');
  console.log('|---|---:|---:|---:|');
  console.log(
    `| without pruning (baseline: one member per write) | ${written.toLocaleString('en')} | ${live.toLocaleString('en')} | ${(written / Math.max(live, 1)).toFixed(1)} |`,
  );
  console.log(
    `| sorted set pruned on every write | ${members.toLocaleString('en')} | ${live.toLocaleString('en')} | ${(members / Math.max(live, 1)).toFixed(2)} (${((members / written) * 100).toFixed(2)} % of the baseline) |`,
  );
} finally {
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>)
    if (keys.length) await redis.unlink(...keys);
  await redis.quit();
  await app.close();
}
