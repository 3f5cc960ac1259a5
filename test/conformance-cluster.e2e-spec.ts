import { Cluster } from 'ioredis';
import { cacheOn, registerCacheConformance } from './conformance/cache-conformance.js';
import { type ClusterTopology, startCluster } from './support/redis-topologies.js';

let cluster: ClusterTopology;

beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

registerCacheConformance('Redis Cluster', () => ({ cluster: { nodes: cluster.nodes } }));

it('Redis Cluster: entries spread over the primaries, each beside its lock and version floor', async () => {
  const { cache, prefix, close } = await cacheOn({ cluster: { nodes: cluster.nodes } });
  const admin = new Cluster(cluster.nodes);
  try {
    await admin.ping(); // connected: it knows the primaries
    const ids = Array.from({ length: 30 }, (_, i) => `user:${i}`);
    // The first write-through of a key never cached records its version floor only; the second lands.
    for (const version of [1, 2]) {
      for (const id of ids) await cache.writeThrough(id, async () => ({ id, version }), { ttl: '1m', version: (row) => row.version });
    }
    const holders = new Set<number>();
    for (const node of admin.nodes('master')) {
      const keys = await node.keys(`${prefix}{default:user:*}`);
      if (keys.length) holders.add(node.options.port as number);
      for (const key of keys) expect(await node.exists(key.replace(prefix, `${prefix}~ver:`))).toBe(1); // same node
    }
    expect(holders.size).toBeGreaterThanOrEqual(2);
  } finally {
    await close();
    admin.disconnect();
  }
});
