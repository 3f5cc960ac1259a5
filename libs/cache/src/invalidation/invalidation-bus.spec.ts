import type { CacheModuleOptions } from '../cache.options.js';
import type { CacheRuntime } from '../cache.runtime.js';
import { glob } from '../keys/key-part.js';
import { createCache, redis, runtimeOf } from '../../test-support/cache-factory.js';
import { waitFor } from '../../test-support/wait.js';

describe('L1 coherence across instances over the bus', () => {
  /** One "instance": its own module, so its own L1, sharing Redis and the key prefix. */
  async function instance(options: Partial<CacheModuleOptions> = {}) {
    const cache = await createCache(options);
    const runtime = runtimeOf(cache);
    await waitFor(() => runtime.bus?.up === true, { what: 'the bus subscription' });
    return { cache, runtime };
  }

  const inL1 = (runtime: CacheRuntime, id: string) => runtime.store.readLocal(id)?.value;

  it("a write on A evicts B's L1 copy over the bus, long before that copy would expire", async () => {
    const a = await instance();
    const b = await instance();
    await a.cache.set('k', 'v1', { ttl: '1m' });
    expect(await b.cache.get('k')).toBe('v1');
    // A's own announcement of v1 may reach B while B reads; B then keeps it out of L1 until the next read.
    await waitFor(async () => (await b.cache.get('k')) === 'v1' && inL1(b.runtime, 'default:k') === 'v1', { what: "B's L1 copy" });
    await a.cache.set('k', 'v2', { ttl: '1m' });
    // B's copy has a minute to live: only A's message can take it out.
    await waitFor(() => inL1(b.runtime, 'default:k') === undefined, { what: "the eviction of B's copy" });
    expect(await b.cache.get('k')).toBe('v2');
  });

  it('deletes, tags and patterns reach the other instances', async () => {
    const a = await instance();
    const b = await instance();
    const users = (x: typeof a) => x.cache.namespace('users');
    await users(a).set('u:1', 1);
    await users(a).set('u:2', 2, { tags: ['team'] });
    await users(a).set('p:3', 3);
    await waitFor(
      async () => {
        for (const key of ['u:1', 'u:2', 'p:3']) await users(b).get(key);
        return b.runtime.store.localSize().entries === 3;
      },
      { what: "B's L1 copies" },
    );

    await users(a).delete('u:1');
    await waitFor(() => inL1(b.runtime, 'users:u:1') === undefined, { what: 'the delete on B' });
    await users(a).invalidateTags('team');
    await waitFor(() => inL1(b.runtime, 'users:u:2') === undefined, { what: 'the tag invalidation on B' });
    await users(a).invalidatePattern(glob`p:*`);
    await waitFor(() => inL1(b.runtime, 'users:p:3') === undefined, { what: 'the pattern invalidation on B' });
    expect(b.runtime.store.localSize().entries).toBe(0);
  });

  it('clears L1 when the bus connection comes back, as messages may have been lost', async () => {
    const b = await instance();
    await b.cache.set('kept', 'v');
    expect(inL1(b.runtime, 'default:kept')).toBe('v');
    const clients = (await redis.client('LIST')) as string;
    const line = clients.split('\n').find((l) => l.includes(`name=cachekit-bus-${b.runtime.bus!.instanceId}`));
    const clientId = /id=(\d+)/.exec(line ?? '')?.[1];
    expect(clientId).toBeDefined();
    await redis.client('KILL', 'ID', clientId!);
    await waitFor(() => inL1(b.runtime, 'default:kept') === undefined, { what: 'L1 cleared' });
    await waitFor(() => b.runtime.bus!.up, { what: 'the bus back up' });
    expect(await b.cache.get('kept')).toBe('v'); // still in L2
  });
});
