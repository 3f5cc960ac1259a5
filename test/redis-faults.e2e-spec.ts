import { CacheModule, CacheService } from '@cachekit/cache';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { injectRedisFaults } from './support/redis-faults.js';
import { dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';
import { eventually } from './support/wait.js';

describe('issue 11: in-process Redis faults (throw, delay, lost replies) against real Redis', () => {
  const prefix = uniquePrefix('redis-faults');
  const admin = new Redis(REDIS_URL);
  const closers: Array<() => Promise<void>> = [];

  /** A cache on its own client with a fault injector, and a plain one (another instance) on the same keys. */
  async function start() {
    const client = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 250 });
    const faults = injectRedisFaults(client);
    const make = async (redis: { client: Redis } | { url: string }, l1: boolean) => {
      const moduleRef = await Test.createTestingModule({
        imports: [CacheModule.forRoot({ redis, keyPrefix: prefix, bus: false, l1: l1 ? {} : false, circuitBreaker: { threshold: 100 } })],
      }).compile();
      await moduleRef.init();
      closers.push(() => moduleRef.close());
      return moduleRef.get(CacheService).namespace('faults');
    };
    const faulty = await make({ client }, true);
    // The other instance reads Redis only (no L1, no bus): what it sees is what Redis holds.
    const other = await make({ url: REDIS_URL }, false);
    closers.push(async () => client.disconnect());
    return { faults, faulty, other };
  }

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await dropPrefix(admin, prefix);
    await admin.quit();
  });

  it('a write-through whose command fails keeps this instance right and removes the old row from Redis once it answers', async () => {
    const { faults, faulty, other } = await start();
    await other.set('row', { v: 1 }, { version: (row: { v: number }) => row.v });
    faults.set({ kind: 'throw' }, ['evalsha', 'eval']);
    await faulty.writeThrough('row', async () => ({ v: 2 }), { version: (row) => row.v });
    expect(await faulty.get('row')).toEqual({ v: 2 }); // L1 holds the committed row
    expect(faults.hits).toBeGreaterThan(0);
    faults.clear();
    // The deferred delete runs when Redis answers again: the other instance never keeps reading v1.
    expect(await eventually(async () => (await other.get('row')) === undefined, 5_000)).toBe(true);
  });

  it('a delete whose reply is lost after Redis ran it is still run again, and nothing older comes back', async () => {
    const { faults, faulty, other } = await start();
    await other.set('gone', 'old', { ttl: '1m' });
    faults.set({ kind: 'drop-reply' }, ['evalsha', 'eval']);
    expect(await faulty.delete('gone')).toBe(0); // the caller saw a failure...
    faults.clear();
    expect(await admin.exists(`${prefix}{faults:gone}`)).toBe(0); // ...though Redis ran it
    await other.set('gone', 'new', { ttl: '1m' }); // a newer value, written after the delete
    expect(await eventually(async () => (await faulty.get('gone')) !== 'old', 5_000)).toBe(true);
  });

  it('commands slower than the command timeout: reads answer from the loader, and the value is cached once Redis is fast again', async () => {
    const { faults, faulty } = await start();
    faults.set({ kind: 'delay', ms: 400 }, ['get', 'evalsha']);
    let loads = 0;
    expect(await faulty.getOrSet('slow', async () => (loads++, 'v'), { ttl: '1m' })).toBe('v');
    faults.clear();
    expect(await faulty.getOrSet('slow2', async () => (loads++, 'w'), { ttl: '1m' })).toBe('w');
    expect(await faulty.getOrSet('slow2', async () => (loads++, 'w'), { ttl: '1m' })).toBe('w');
    expect(loads).toBe(2);
  });
});
