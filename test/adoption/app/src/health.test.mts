// The terminus indicator from the "health" entry point, wired the usual terminus way.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { CacheModule } from '@cachekit/cache';
import { CacheHealthIndicator } from '@cachekit/cache/health';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cache: CacheHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.cache.isHealthy('cache')]);
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('health') }), TerminusModule],
  controllers: [HealthController],
  providers: [CacheHealthIndicator],
})
class AppModule {}

describe('CacheHealthIndicator with @nestjs/terminus', () => {
  let running: RunningApp;
  before(async () => {
    running = await startHttpApp(AppModule);
  });
  after(() => closeApp(running?.app));

  it('GET /health answers 200 with the cache up', async () => {
    const answer = await request(`${running.url}/health`);
    assert.equal(answer.status, 200, answer.text);
    const body = answer.json();
    assert.equal(body.status, 'ok', answer.text);
    assert.equal(body.info?.cache?.status, 'up', `info.cache.status; body: ${answer.text}`);
  });
});
