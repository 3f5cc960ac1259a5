import { Redis } from 'ioredis';
import { cacheOn, registerCacheConformance } from './conformance/cache-conformance.js';
import { startSentinel } from './support/redis-topologies.js';

let sentinel: Awaited<ReturnType<typeof startSentinel>>;

beforeAll(async () => {
  sentinel = await startSentinel();
}, 30_000);

afterAll(async () => {
  await sentinel?.stop();
});

registerCacheConformance('Redis Sentinel', () => ({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } }));

it('Redis Sentinel: the cache writes to the primary the sentinel names', async () => {
  const { cache, prefix, close } = await cacheOn({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } });
  const primary = new Redis(await sentinel.primaryUrl());
  try {
    await cache.set('where', 'primary', { ttl: '1m' });
    expect(JSON.parse((await primary.get(`${prefix}{default:where}`)) ?? '{}').v).toBe('primary');
  } finally {
    await close();
    primary.disconnect();
  }
});
