import { Redis } from 'ioredis';
import { cacheOn, registerCacheConformance } from './conformance/cache-conformance.js';
import { dropPrefix, REDIS_URL } from './support/services.js';

registerCacheConformance('a single Redis', () => ({ url: REDIS_URL }));

it('a single Redis: the cache writes to the server at REDIS_URL', async () => {
  const { cache, prefix, close } = await cacheOn({ url: REDIS_URL });
  const redis = new Redis(REDIS_URL);
  try {
    await cache.set('where', 'here', { ttl: '1m' });
    expect(JSON.parse((await redis.get(`${prefix}{default:where}`)) ?? '{}').v).toBe('here');
  } finally {
    await close();
    await dropPrefix(redis, prefix);
    await redis.quit();
  }
});
