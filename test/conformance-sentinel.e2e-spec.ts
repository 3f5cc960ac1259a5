import { registerCacheConformance } from './conformance/cache-conformance.js';
import { startSentinel } from './support/redis-topologies.js';

let sentinel: Awaited<ReturnType<typeof startSentinel>>;

beforeAll(async () => {
  sentinel = await startSentinel();
}, 30_000);

afterAll(async () => {
  await sentinel?.stop();
});

registerCacheConformance('Redis Sentinel', () => ({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name } }));
