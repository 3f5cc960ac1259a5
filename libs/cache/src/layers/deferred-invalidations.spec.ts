import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedisServer } from '../../../../test/support/redis-server.js';
import { CacheModule } from '../cache.module.js';
import { CacheRuntime } from '../cache.runtime.js';
import { CacheService } from '../cache.service.js';

describe('invalidations made while Redis hangs', () => {
  it('are run again once Redis answers, so L2 never serves the old value afterwards', async () => {
    const server = await startRedisServer();
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: server.url }, keyPrefix: 'deferred:', commandTimeout: 100 })],
    }).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    const cache = moduleRef.get(CacheService);
    const runtime = moduleRef.get(CacheRuntime);
    const direct = new Redis(server.url);
    try {
      await cache.set('k', 'old');
      await cache.set('tagged', 'old', { tags: ['t'] });
      await cache.writeThrough('row', async () => ({ v: 1 }), { version: (row) => row.v });
      server.pause();
      expect(await cache.delete('k')).toBe(0); // Redis did not answer
      await cache.invalidateTags('t');
      await cache.writeThrough('row', async () => ({ v: 2 }), { version: (row) => row.v });
      expect(runtime.store.deferred.size).toBe(3);
      expect(await cache.get('k')).toBeUndefined(); // L1 is right meanwhile
      expect(await cache.get('row')).toEqual({ v: 2 });
      server.resume();
      const deadline = Date.now() + 5_000;
      while (runtime.store.deferred.size > 0 && Date.now() < deadline) await sleep(50);
      expect(runtime.store.deferred.size).toBe(0);
      expect(await direct.exists('deferred:default:k', 'deferred:default:tagged', 'deferred:default:row')).toBe(0);
    } finally {
      server.resume();
      direct.disconnect();
      await moduleRef.close();
      await server.kill();
    }
  });

  it('skips a hanging Redis behind a circuit breaker, and goes back to it once it answers', async () => {
    const server = await startRedisServer();
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: server.url }, keyPrefix: 'breaker:', commandTimeout: 100, l1: false })],
    }).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    const cache = moduleRef.get(CacheService);
    const runtime = moduleRef.get(CacheRuntime);
    try {
      await cache.set('k', 'v');
      server.pause();
      for (let i = 0; i < 3; i++) expect(await cache.get('k')).toBeUndefined(); // each waits out the 100 ms timeout
      expect(runtime.store.l2.breakerOpen).toBe(true);
      const started = Date.now();
      for (let i = 0; i < 20; i++) expect(await cache.getOrSet('other', () => 'loaded')).toBe('loaded');
      expect(Date.now() - started).toBeLessThan(100); // open: no command waits for Redis
      server.resume();
      await sleep(1_100);
      expect(await cache.get('k')).toBe('v');
      expect(runtime.store.l2.breakerOpen).toBe(false);
    } finally {
      server.resume();
      await moduleRef.close();
      await server.kill();
    }
  });
});
