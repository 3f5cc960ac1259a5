import { Redis } from 'ioredis';
import { startRedisServer } from '../../test-support/redis-server.js';
import { RedisScript, SCRIPTS } from './redis-script.js';

describe('RedisScript', () => {
  it('runs by SHA, and loads the script again after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const server = await startRedisServer();
    const redis = new Redis(server.url);
    try {
      const script = SCRIPTS.acquireLock;
      const [taken] = (await script.run(redis, ['lock:a'], ['owner', 10_000])) as [number, number];
      expect(taken).toBe(1);
      expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
      await redis.script('FLUSH');
      const [again] = (await script.run(redis, ['lock:b'], ['owner', 10_000])) as [number, number];
      expect(again).toBe(1);
      expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    } finally {
      redis.disconnect();
      await server.kill();
    }
  });

  it('takes the includes in and names KEYS and ARGV in every header', () => {
    expect(new RedisScript('hash-set-2').lua).toContain('local function replace_hash');
    for (const script of Object.values(SCRIPTS)) {
      expect(script.lua).not.toContain('--@include');
      expect(script.lua).toMatch(/KEYS/);
      expect(script.lua).toMatch(/Returns/);
    }
  });
});
