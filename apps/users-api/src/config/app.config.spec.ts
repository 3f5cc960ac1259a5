import { loadConfig } from './app.config.js';

describe('loadConfig', () => {
  it('applies the documented defaults and reads durations as ms or strings', () => {
    const config = loadConfig({ USERS_CACHE_TTL: '5m', CACHE_DEFAULT_TTL: '1500' });
    expect(config).toMatchObject({
      port: 3000,
      redisUrl: 'redis://127.0.0.1:6379',
      cacheKeyPrefix: 'cache:',
      cacheDefaultTtlMs: 1500,
      usersCacheTtlMs: 300_000,
      usersReadDelayMs: 0,
      cacheAdminToken: undefined,
    });
  });

  it('reads where the cache Redis is: a URL, a Redis Cluster or a Sentinel setup, with credentials and TLS', () => {
    expect(loadConfig({ REDIS_URL: 'redis://cache:6380' }).cacheRedis).toEqual({ url: 'redis://cache:6380' });
    const cluster = loadConfig({
      REDIS_URL: 'redis://unused:1',
      REDIS_CLUSTER_NODES: 'node-1:7000, node-2:7001',
      REDIS_PASSWORD: 'secret',
    });
    expect(cluster.cacheRedis).toEqual({
      cluster: {
        nodes: [
          { host: 'node-1', port: 7000 },
          { host: 'node-2', port: 7001 },
        ],
        username: undefined,
        password: 'secret',
        tls: false,
      },
    });
    expect(cluster.redisUrl).toBe('redis://unused:1'); // still the queue's default
    const config = loadConfig({
      REDIS_SENTINELS: 'sentinel-1:26379, sentinel-2:26380',
      REDIS_SENTINEL_NAME: 'cache',
      REDIS_PASSWORD: 'secret',
      REDIS_TLS: '1',
    });
    expect(config.cacheRedis).toEqual({
      sentinel: {
        sentinels: [
          { host: 'sentinel-1', port: 26379 },
          { host: 'sentinel-2', port: 26380 },
        ],
        name: 'cache',
        username: undefined,
        password: 'secret',
        tls: true,
      },
    });
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(/REDIS_SENTINEL_NAME/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'no-port', REDIS_SENTINEL_NAME: 'x' })).toThrow(/REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'node-1' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_NAME: 'x' })).toThrow(/set one of them/);
    expect(() => loadConfig({ REDIS_TLS: 'yes' })).toThrow(/REDIS_TLS/);
  });

  it('names every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', USERS_CACHE_TTL: 'forever', REDIS_URL: 'http://x' })).toThrow(
      /PORT.*REDIS_URL.*USERS_CACHE_TTL|PORT.*USERS_CACHE_TTL.*REDIS_URL/,
    );
  });
});
