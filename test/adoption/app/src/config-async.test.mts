// forRootAsync fed by @nestjs/config: ConfigService hands out `string | undefined`, and the options
// must take them as they come (this file failing to compile is a failure of the scenario).
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module, Param } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { CacheModule, Cacheable } from '@cachekit/cache';
import { Redis } from 'ioredis';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

const prefix = keyPrefixFor('config-async');

@Controller('things')
class ThingsController {
  @Get(':id')
  @Cacheable()
  findOne(@Param('id') id: string) {
    return { id };
  }
}

@Module({
  imports: [
    // Values as a .env file would give them: all strings.
    ConfigModule.forRoot({
      ignoreEnvFile: true,
      load: [() => ({ REDIS_URL, CACHE_TTL: '30s', CACHE_KEY_PREFIX: prefix })],
    }),
    CacheModule.forRootAsync({
      isGlobal: true,
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        redis: { url: config.get<string>('REDIS_URL')! },
        defaultTtl: config.get<string>('CACHE_TTL'),
        keyPrefix: config.get<string>('CACHE_KEY_PREFIX'),
      }),
    }),
  ],
  controllers: [ThingsController],
})
class AppModule {}

describe('CacheModule.forRootAsync with ConfigService', () => {
  let running: RunningApp;
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  before(async () => {
    running = await startHttpApp(AppModule);
  });
  after(async () => {
    redis.disconnect();
    await closeApp(running?.app);
  });

  it('starts, caches, and writes under the configured prefix with the configured TTL', async () => {
    assert.equal((await request(`${running.url}/things/1`)).xCache, 'MISS');
    assert.equal((await request(`${running.url}/things/1`)).xCache, 'HIT');
    await redis.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    assert.ok(keys.length > 0, `no Redis key under the configured keyPrefix ${prefix}`);
    const ttls = await Promise.all(keys.map((key) => redis.pttl(key)));
    const longest = Math.max(...ttls);
    // defaultTtl '30s' from the config (the module default is 60 s).
    assert.ok(longest > 0 && longest <= 30_000, `longest TTL under the prefix is ${longest} ms; expected at most 30 s (CACHE_TTL)`);
  });
});
