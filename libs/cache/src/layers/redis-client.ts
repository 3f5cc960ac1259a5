import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { CacheOptionError } from '../cache.errors.js';
import type { CacheConfig, RedisClusterOptions, SentinelOptions } from '../cache.options.js';

/** The cache's Redis: one node (direct or found through Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * `items` in groups whose keys share a hash slot, so that each group can go to one script or one
 * multi-key command (a cluster refuses keys of several slots with CROSSSLOT). On one node every
 * slot is served by the same server: one group.
 */
export function groupBySlot<T>(redis: RedisClient, items: readonly T[], keyOf: (item: T) => string): T[][] {
  if (!redis.isCluster) return items.length ? [[...items]] : [];
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = calculateSlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}

/** The servers that hold keys: every primary of a cluster (a SCAN covers one node), or the one node. */
export function primaries(redis: RedisClient): Redis[] {
  return redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

/**
 * The connection the module owns for `config.redis` (`{ url }`, `{ sentinel }` or `{ cluster }`),
 * not connected yet. A cache must answer "miss" when Redis is away, not queue commands until it is
 * back: no offline queue, one retry, bounded commands.
 */
export function createRedisClient(config: CacheConfig): RedisClient {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: config.commandTimeout,
    connectTimeout: config.connectTimeout,
    // ioredis waits this long for an already closed socket on disconnect; keep shutdown quick.
    disconnectTimeout: 200,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
  const target = config.redis;
  if ('url' in target) return new Redis(target.url, options);
  if ('sentinel' in target) return new Redis({ ...options, ...sentinelOptions(target.sentinel) });
  if ('cluster' in target) return clusterClient(target.cluster, options);
  throw new CacheOptionError('createRedisClient: a client passed in is not created here');
}

/** ioredis options for a primary found through Sentinel; a failover moves the connection to the new primary. */
function sentinelOptions(sentinel: SentinelOptions): RedisOptions {
  return {
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.name,
    username: sentinel.username,
    password: sentinel.password,
    sentinelUsername: sentinel.sentinelUsername,
    sentinelPassword: sentinel.sentinelPassword,
    db: sentinel.db,
    tls: sentinel.tls ? {} : undefined,
    enableTLSForSentinelMode: sentinel.tls === true,
    // A failover is a reconnect to another primary: go on at once with the new one.
    sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
  };
}

/**
 * A Redis Cluster: commands go to the primary of their key's slot. When a primary dies, the
 * commands of its slots fail (the circuit breaker counts them) until a replica takes over; the
 * slot map is refreshed on MOVED and on a lost node, and every few seconds anyway.
 */
function clusterClient(cluster: RedisClusterOptions, options: RedisOptions): Cluster {
  const { lazyConnect, enableOfflineQueue, maxRetriesPerRequest, retryStrategy, ...perNode } = options;
  return new Cluster(
    cluster.nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect,
      enableOfflineQueue,
      maxRedirections: 3,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshInterval: 5_000,
      clusterRetryStrategy: retryStrategy,
      natMap: cluster.natMap,
      redisOptions: {
        ...perNode,
        maxRetriesPerRequest,
        username: cluster.username,
        password: cluster.password,
        tls: cluster.tls ? {} : undefined,
        ...cluster.redisOptions,
      },
    },
  );
}
