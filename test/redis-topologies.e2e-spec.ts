import { Cluster, Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ClusterTopology, type SentinelTopology, startCluster, startSentinel } from './support/redis-topologies.js';

/** Set REDIS_TOPOLOGY_TIMINGS=1 to print start-up and failover times. */
function report(line: string): void {
  if (process.env.REDIS_TOPOLOGY_TIMINGS) console.log(line);
}

/** Retries `attempt` until it resolves or `ms` pass; answers how long that took, or throws with the last error. */
async function recovers(ms: number, attempt: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await attempt();
      return Date.now() - started;
    } catch (error) {
      if (Date.now() - started > ms) throw new Error(`still failing after ${ms} ms: ${(error as Error).message}`, { cause: error });
      await sleep(50);
    }
  }
}

describe('real local Redis topologies (support/redis-topologies.ts)', () => {
  describe('Sentinel: a primary, a replica and one sentinel', () => {
    let topology: SentinelTopology | undefined;
    let client: Redis | undefined;

    beforeAll(async () => {
      const started = Date.now();
      topology = await startSentinel();
      report(`sentinel topology up in ${Date.now() - started} ms`);
    }, 30_000);

    afterAll(async () => {
      client?.disconnect();
      await topology?.stop();
    });

    it('ioredis follows the sentinel to the promoted replica after the primary is SIGKILLed', async () => {
      const { sentinels, name } = topology!;
      client = new Redis({ sentinels, name, maxRetriesPerRequest: 1, retryStrategy: () => 100, connectTimeout: 1_000 });
      client.on('error', () => undefined);
      await client.set('before', 'v1');
      expect(await client.get('before')).toBe('v1');
      expect(await client.call('WAIT', 1, 2_000)).toBe(1); // the replica has it

      const first = await topology!.primaryUrl();
      await topology!.killPrimary();
      const ms = await recovers(15_000, () => client!.set('after', 'v2'));
      report(`sentinel failover: SET succeeds again ${ms} ms after SIGKILL`);

      expect(await topology!.primaryUrl()).not.toBe(first);
      expect(await client.get('after')).toBe('v2');
      expect(await client.get('before')).toBe('v1'); // the promoted replica, not a fresh server
      expect(await client.call('ROLE')).toEqual(expect.arrayContaining(['master']));
    }, 30_000);
  });

  describe('Cluster: 3 primaries and 3 replicas', () => {
    let topology: ClusterTopology | undefined;
    let client: Cluster | undefined;

    beforeAll(async () => {
      const started = Date.now();
      topology = await startCluster();
      report(`cluster topology up in ${Date.now() - started} ms`);
    }, 30_000);

    afterAll(async () => {
      client?.disconnect();
      await topology?.stop();
    });

    it('ioredis Cluster writes the key of a SIGKILLed primary again once its replica took over', async () => {
      // disconnectTimeout: ioredis arms a 2 s timer for every slot-refresh connection it closes, even
      // one to the dead node that is already closed; at 2 s it would keep Jest alive after the run.
      client = new Cluster(topology!.nodes, { redisOptions: { connectTimeout: 1_000, maxRetriesPerRequest: 1, disconnectTimeout: 200 } });
      client.on('error', () => undefined);
      const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);
      for (const key of keys) await client.set(key, `v:${key}`);
      expect(await Promise.all(keys.map((key) => client!.get(key)))).toEqual(keys.map((key) => `v:${key}`));
      const primaries = client.nodes('master');
      expect(primaries).toHaveLength(3);
      const sizes = await Promise.all(primaries.map((node) => node.dbsize()));
      expect(sizes.every((size) => size > 0)).toBe(true); // spread over all three
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
      // Every replica has what its primary has, so the promoted one still serves the old values.
      expect(await Promise.all(primaries.map((node) => node.call('WAIT', 1, 2_000)))).toEqual([1, 1, 1]);

      const killed = await topology!.killPrimaryOf('key:0');
      expect(topology!.nodes).toContainEqual(killed);
      const ms = await recovers(15_000, () => client!.set('key:0', 'after'));
      report(`cluster failover: SET key:0 succeeds again ${ms} ms after SIGKILL of ${killed.port}`);

      expect(await client.get('key:0')).toBe('after');
      expect(await Promise.all(keys.slice(1).map((key) => client!.get(key)))).toEqual(keys.slice(1).map((key) => `v:${key}`));
    }, 30_000);
  });
});
