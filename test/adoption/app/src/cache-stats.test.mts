// CacheService.stats(): the figures an app shows on its own status page.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { CacheModule, CacheService } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor } from './support/harness.mjs';

@Module({ imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('cache-stats') })] })
class AppModule {}

describe('CacheService.stats()', () => {
  let app: INestApplicationContext;
  before(async () => {
    // No HTTP needed: a plain application context, as in a worker or a CLI.
    app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'], abortOnError: false });
  });
  after(() => closeApp(app));

  it('reports the hit ratio and the L1 size', async () => {
    const cache = app.get(CacheService);
    let loads = 0;
    await cache.getOrSet('answer', async () => ++loads);
    await cache.getOrSet('answer', async () => ++loads);
    assert.equal(loads, 1, 'the second getOrSet is a hit');
    const stats = await cache.stats();
    const ratio: number | null = stats.total.hitRatio;
    assert.ok(ratio === null || (typeof ratio === 'number' && ratio >= 0 && ratio <= 1), `total.hitRatio is a ratio or null; got ${ratio}`);
    assert.ok(typeof ratio === 'number' && ratio > 0, `total.hitRatio after a hit; got ${ratio}`);
    assert.equal(typeof stats.l1.entries, 'number', `l1.entries; stats: ${JSON.stringify(stats)}`);
    assert.ok(stats.l1.entries >= 1, 'the entry is in L1');
  });
});
