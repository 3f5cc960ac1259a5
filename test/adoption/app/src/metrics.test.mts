// The metrics one-liner: `controllers: [CacheMetricsController]`.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module, Param } from '@nestjs/common';
import { CacheMetricsController, CacheModule, Cacheable } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

@Controller('things')
class ThingsController {
  @Get(':id')
  @Cacheable()
  findOne(@Param('id') id: string) {
    return { id };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('metrics') })],
  controllers: [CacheMetricsController, ThingsController],
})
class AppModule {}

describe('CacheMetricsController', () => {
  let running: RunningApp;
  before(async () => {
    running = await startHttpApp(AppModule);
  });
  after(() => closeApp(running?.app));

  it('GET /metrics answers Prometheus text with the hit counted', async () => {
    await request(`${running.url}/things/1`);
    assert.equal((await request(`${running.url}/things/1`)).xCache, 'HIT');
    const metrics = await request(`${running.url}/metrics`);
    assert.equal(metrics.status, 200, metrics.text.slice(0, 300));
    assert.match(metrics.contentType, /^text\/plain/, 'content type');
    assert.match(
      metrics.text,
      /^cache_hits_total\{[^}]*namespace="http"[^}]*\} [1-9]/m,
      'a cache_hits_total sample for namespace "http" counting the hit',
    );
  });
});
