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

  it('names every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', USERS_CACHE_TTL: 'forever', REDIS_URL: 'http://x' })).toThrow(
      /PORT.*REDIS_URL.*USERS_CACHE_TTL|PORT.*USERS_CACHE_TTL.*REDIS_URL/,
    );
  });
});
