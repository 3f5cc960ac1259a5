import { CacheModule, CacheService } from '@cachekit/cache';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';

describe('issue 11 item 8: tag indexes stay proportional to live entries', () => {
  const prefix = uniquePrefix('tag-index');
  const redis = new Redis(REDIS_URL);

  afterAll(async () => {
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('after short-TTL traffic, a tag index holds about the live entries, not every entry ever written', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: prefix, l1: false, bus: false })],
    }).compile();
    await moduleRef.init();
    const cache = moduleRef.get(CacheService).namespace('traffic');
    const perRound = 200;
    let written = 0;
    const until = Date.now() + 2_000;
    for (let round = 0; Date.now() < until; round++) {
      await Promise.all(
        Array.from({ length: perRound }, (_, i) => cache.set(`k:${round}:${i}`, { round, i }, { ttl: 100, tags: ['hot'] })),
      );
      written += perRound;
    }
    const indexed = await redis.zcard(`${prefix}~tagz:{traffic:hot}`);
    let live = 0;
    for await (const keys of redis.scanStream({ match: `${prefix}{traffic:k:*}`, count: 1000 }) as AsyncIterable<string[]>)
      live += keys.length;
    console.log(`tag index: ${indexed} members for ${live} live entries after ${written} writes in 2 s (TTL 100 ms)`);
    expect(written).toBeGreaterThan(5 * perRound);
    // Members of the last TTL window only: the live entries, plus what expired since the last write.
    expect(indexed).toBeLessThanOrEqual(live + 2 * perRound);
    expect(indexed).toBeLessThan(written / 2);
    // And the index still does its job.
    await cache.invalidateTags('hot');
    expect(await redis.exists(`${prefix}~tagz:{traffic:hot}`)).toBe(0);
    await moduleRef.close();
  });
});
