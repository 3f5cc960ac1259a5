import { jest } from '@jest/globals';
import { Redis } from 'ioredis';
import type { CacheModuleOptions } from '../cache.options.js';
import { createCache, onTeardown, runtimeOf } from '../../test-support/cache-factory.js';
import { startRedisServer } from '../../test-support/redis-server.js';
import { waitFor } from '../../test-support/wait.js';

/** A cache on a redis-server of its own, which the test may pause (SIGSTOP: it hangs, connections stay open). */
async function cacheOnOwnServer(options: Partial<CacheModuleOptions>) {
  const server = await startRedisServer();
  onTeardown(server.kill);
  const cache = await createCache({ redis: { url: server.url }, commandTimeout: 100, ...options });
  // Before the cache closes: a test that failed while the server was paused must not leave the close waiting on it.
  onTeardown(server.resume);
  return { server, cache, runtime: runtimeOf(cache) };
}

describe('invalidations made while Redis hangs', () => {
  it('are run again once Redis answers, so L2 never serves the old value afterwards', async () => {
    const { server, cache, runtime } = await cacheOnOwnServer({ keyPrefix: 'deferred:' });
    const direct = new Redis(server.url);
    onTeardown(() => direct.disconnect());
    await cache.set('k', 'old');
    await cache.set('tagged', 'old', { tags: ['t'] });
    await cache.writeThrough('row', async () => ({ v: 1 }), { version: (row) => row.v });
    server.pause();
    expect(await cache.delete('k')).toBe(0); // Redis did not answer
    await cache.invalidateTags('t');
    await cache.writeThrough('row', async () => ({ v: 2 }), { version: (row) => row.v });
    expect(runtime.store.missedCount).toBe(3);
    expect(await cache.get('k')).toBeUndefined(); // L1 is right meanwhile
    expect(await cache.get('row')).toEqual({ v: 2 });
    server.resume();
    await waitFor(() => runtime.store.missedCount === 0, { what: 'the deferred invalidations run' });
    expect(await direct.exists('deferred:default:k', 'deferred:default:tagged', 'deferred:default:row')).toBe(0);
  });

  it('skips a hanging Redis behind a circuit breaker, and goes back to it once it answers', async () => {
    const { server, cache, runtime } = await cacheOnOwnServer({ keyPrefix: 'breaker:', l1: false });
    await cache.set('k', 'v');
    server.pause();
    for (let i = 0; i < 3; i++) expect(await cache.get('k')).toBeUndefined(); // each waits out the 100 ms timeout
    expect(runtime.store.redisSkipped).toBe(true);
    // Open: the cache answers without sending Redis anything, so nothing waits for it.
    const sent = jest.spyOn(runtime.redis, 'sendCommand');
    for (let i = 0; i < 20; i++) expect(await cache.getOrSet('other', () => 'loaded')).toBe('loaded');
    expect(sent).not.toHaveBeenCalled();
    sent.mockRestore();
    server.resume();
    // After the cool-down, a trial call goes to Redis again and finds the entry.
    await waitFor(async () => (await cache.get('k')) === 'v', { what: 'the entry read through the closed breaker' });
    expect(runtime.store.redisSkipped).toBe(false);
  });
});
