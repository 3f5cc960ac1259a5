import { Redis } from 'ioredis';
import { CacheProcess } from './support/cache-processes.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';

// Several processes, each with its own CacheService (and L1), sharing one Redis.
describe('stampede prevention across processes', () => {
  const prefix = uniquePrefix('stampede');
  const redis = new Redis(REDIS_URL);
  let processes: CacheProcess[] = [];

  beforeAll(async () => {
    processes = await Promise.all(Array.from({ length: 4 }, () => CacheProcess.start(prefix)));
  }, 30_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  const totalLoads = async (group = processes) =>
    (await Promise.all(group.map((p) => p.send('loads')))).reduce((sum, answer) => sum + answer.loads, 0);

  it('runs a 300 ms loader exactly once for 1,000 concurrent requests over 4 processes', async () => {
    const before = await totalLoads();
    const options = { ttl: '30s', lock: { ttl: '5s', wait: '5s' } };
    const answers = await Promise.all(processes.map((p) => p.send('burst', { key: 'cold', count: 250, loaderMs: 300, options })));
    expect((await totalLoads()) - before).toBe(1);
    const results = answers.flatMap((answer) => answer.results);
    expect(results).toHaveLength(1000);
    // Every waiter got the one load's value: none timed out of its lock wait and loaded itself.
    // How soon they get it is measured by bench/stampede.bench.ts, not asserted here.
    expect(results.every((r: { status: string }) => r.status === 'MISS' || r.status === 'HIT')).toBe(true);
  });

  it('recovers from a lock holder killed mid-load once its lock expires, long before the wait runs out', async () => {
    const [holder, waiter] = await Promise.all([CacheProcess.start(prefix), CacheProcess.start(prefix)]);
    try {
      // A wait of a minute: only the lock's expiry (1 s) can end it within the test's time.
      const options = { ttl: '30s', lock: { ttl: 1000, wait: '60s' } };
      const loading = holder.nextEvent('loader-started');
      const holderCall = holder.send('burst', { key: 'orphan', count: 1, loaderMs: 60_000, options }).catch(() => undefined);
      await loading;
      const waiting = waiter.send('burst', { key: 'orphan', count: 1, loaderMs: 50, options });
      expect(await redis.exists(`${prefix}~lock:{default:orphan}`)).toBe(1);
      await holder.stop();
      const answer = await waiting;
      expect(answer.results[0].status).toBe('MISS');
      expect(answer.loads).toBe(1);
      expect(JSON.parse((await redis.get(`${prefix}{default:orphan}`)) as string).v.by).toBe(waiter.child.pid);
      void holderCall;
    } finally {
      await Promise.all([holder.stop(), waiter.stop()]);
    }
  });

  it('keeps a hot key fresh with XFetch: after warm-up no request waits, about one load per TTL', async () => {
    const group = processes.slice(0, 2);
    const before = await totalLoads(group);
    const ttlMs = 1000;
    const durationMs = 6000;
    const options = { ttl: ttlMs, xfetch: { beta: 1 }, lock: { ttl: '5s', wait: '5s' } };
    const answers = await Promise.all(
      group.map((p) => p.send('steady', { key: 'hot', durationMs, intervalMs: 5, loaderMs: 100, options })),
    );
    const loads = (await totalLoads(group)) - before;
    const results = answers.flatMap((a) => a.results) as Array<{ status: string; at: number; ms: number }>;
    const start = Math.min(...results.map((r) => r.at));
    const afterWarmUp = results.filter((r) => r.at > start + 500);
    expect(afterWarmUp.length).toBeGreaterThan(500);
    // Nobody waited for a loader: every request after warm-up was a hit (a hit never waits for one).
    expect(afterWarmUp.filter((r) => r.status !== 'HIT')).toEqual([]);
    // One load per TTL period over 6 s is 6; XFetch refreshes a little early, two processes may
    // each refresh once in a period. The bound: at most 2 per period, 12 in all.
    expect(loads).toBeGreaterThanOrEqual(durationMs / ttlMs - 1);
    expect(loads).toBeLessThanOrEqual((2 * durationMs) / ttlMs);
  }, 20_000);
});
