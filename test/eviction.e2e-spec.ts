import { CacheModule, CacheService } from '@cachekit/cache';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { startRedisServer } from './support/redis-server.js';

type Row = { name: string; version: number };

describe('issue 11 item 9: eviction never lets protected writes through (a small maxmemory Redis, flooded)', () => {
  it('after a flood evicts entries and their version floors, no older write-through replaces a newer row', async () => {
    const server = await startRedisServer(['--maxmemory', '3mb', '--maxmemory-policy', 'allkeys-lru', '--maxmemory-samples', '3']);
    const flood = new Redis(server.url);
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: server.url }, keyPrefix: 'c:', l1: false, bus: false })],
    }).compile();
    await moduleRef.init();
    try {
      const rows = moduleRef.get(CacheService).namespace('rows');
      const put = (id: number, row: Row) => rows.writeThrough(`r:${id}`, async () => row, { version: (r) => r.version });
      const ids = Array.from({ length: 200 }, (_, i) => i);
      // Each row at version 5 in the cache (the first write-through records the floor, the second caches the row).
      for (const id of ids) {
        await put(id, { name: 'new', version: 5 });
        await put(id, { name: 'new', version: 5 });
      }
      // Other keys until Redis has evicted a good share of everything.
      const evicted = async () => Number(/evicted_keys:(\d+)/.exec(await flood.info('stats'))?.[1] ?? 0);
      for (let batch = 0; (await evicted()) < 5_000 && batch < 200; batch++) {
        const pipeline = flood.pipeline();
        for (let i = 0; i < 200; i++) pipeline.set(`flood:${batch}:${i}`, 'x'.repeat(512));
        await pipeline.exec();
      }
      expect(await evicted()).toBeGreaterThanOrEqual(5_000);
      // Late write-throughs of an older version.
      for (const id of ids) await put(id, { name: 'old', version: 4 });
      const held = await Promise.all(ids.map((id) => rows.get<Row>(`r:${id}`)));
      const old = held.filter((row) => row?.version === 4).length;
      const kept = held.filter((row) => row?.version === 5).length;
      console.log(
        `eviction: ${kept} rows still cached at v5, ${held.length - kept - old} evicted (read from the database next), ${old} at the older v4`,
      );
      expect(old).toBe(0);
    } finally {
      await moduleRef.close();
      flood.disconnect();
      await server.kill();
    }
  });
});
