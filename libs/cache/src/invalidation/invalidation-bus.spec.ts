import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { dropPrefix, REDIS_URL, uniquePrefix } from '../../../../test/support/services.js';
import { CacheModule } from '../cache.module.js';
import type { CacheModuleOptions } from '../cache.options.js';
import { CacheRuntime } from '../cache.runtime.js';
import { CacheService } from '../cache.service.js';
import { glob } from '../keys/key-part.js';
import { within } from '../../../../test/support/wait.js';

/** Polls until `check` holds; answers how long that took, or throws after `limitMs`. */

describe('L1 coherence across instances over the bus', () => {
  const prefix = uniquePrefix('bus');
  const redis = new Redis(REDIS_URL);
  const closers: Array<() => Promise<void>> = [];

  /** One "instance": its own module, so its own L1, sharing Redis and the key prefix. */
  async function instance(options: Partial<CacheModuleOptions> = {}) {
    const moduleRef = await Test.createTestingModule({
      imports: [CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: prefix, ...options })],
    }).compile();
    await moduleRef.init();
    closers.push(() => moduleRef.close());
    const runtime = moduleRef.get(CacheRuntime);
    await within(2000, async () => runtime.bus?.up === true);
    return { cache: moduleRef.get(CacheService), runtime };
  }

  afterAll(async () => {
    for (const close of closers) await close();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  const inL1 = (runtime: CacheRuntime, id: string) => runtime.store.readLocal(id)?.value;

  it("a write on A evicts B's L1 copy within milliseconds", async () => {
    const a = await instance();
    const b = await instance();
    await a.cache.set('k', 'v1');
    expect(await b.cache.get('k')).toBe('v1');
    // A's own announcement of v1 may reach B while B reads; B then keeps it out of L1 until the next read.
    await within(1000, async () => (await b.cache.get('k')) === 'v1' && inL1(b.runtime, 'default:k') === 'v1');
    await a.cache.set('k', 'v2');
    const ms = await within(50, async () => inL1(b.runtime, 'default:k') === undefined);
    expect(ms).toBeLessThan(50);
    expect(await b.cache.get('k')).toBe('v2');
  });

  it('deletes, tags and patterns reach the other instances', async () => {
    const a = await instance();
    const b = await instance();
    const users = (x: typeof a) => x.cache.namespace('users');
    await users(a).set('u:1', 1);
    await users(a).set('u:2', 2, { tags: ['team'] });
    await users(a).set('p:3', 3);
    await within(1000, async () => {
      for (const key of ['u:1', 'u:2', 'p:3']) await users(b).get(key);
      return b.runtime.store.l1?.size === 3;
    });

    await users(a).delete('u:1');
    await within(50, async () => inL1(b.runtime, 'users:u:1') === undefined);
    await users(a).invalidateTags('team');
    await within(50, async () => inL1(b.runtime, 'users:u:2') === undefined);
    await users(a).invalidatePattern(glob`p:*`);
    await within(50, async () => inL1(b.runtime, 'users:p:3') === undefined);
    expect(b.runtime.store.l1?.size).toBe(0);
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
    await within(3000, async () => inL1(b.runtime, 'default:kept') === undefined);
    await within(3000, async () => b.runtime.bus!.up);
    expect(await b.cache.get('kept')).toBe('v'); // still in L2
  });
});
