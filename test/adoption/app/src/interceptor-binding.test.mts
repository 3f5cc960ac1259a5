// CacheInterceptor bound three times over (globally, on the class, and by @Cacheable on the
// method), as happens when an app binds it globally and someone also follows the README.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module, Param, UseInterceptors } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { CacheInterceptor, CacheModule, Cacheable } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

@Controller('bound')
@UseInterceptors(CacheInterceptor)
class BoundController {
  calls = 0;
  plainCalls = 0;

  @Get('cached/:id')
  @Cacheable()
  cached(@Param('id') id: string) {
    this.calls++;
    return { id, calls: this.calls };
  }

  @Get('plain/:id')
  plain(@Param('id') id: string) {
    this.plainCalls++;
    return { id, calls: this.plainCalls };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('interceptor-binding') })],
  controllers: [BoundController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }],
})
class AppModule {}

describe('CacheInterceptor bound globally, on the class and by @Cacheable', () => {
  let running: RunningApp;
  let controller: BoundController;
  before(async () => {
    running = await startHttpApp(AppModule);
    controller = running.app.get(BoundController);
  });
  after(() => closeApp(running?.app));

  it('answers MISS then HIT and runs the handler once', async () => {
    const first = await request(`${running.url}/bound/cached/1`);
    const second = await request(`${running.url}/bound/cached/1`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.xCache, 'MISS');
    assert.equal(second.xCache, 'HIT');
    assert.equal(controller.calls, 1, 'handler calls for two GETs');
  });

  it('leaves a handler without @Cacheable alone', async () => {
    const first = await request(`${running.url}/bound/plain/1`);
    const second = await request(`${running.url}/bound/plain/1`);
    assert.equal(second.status, 200, second.text);
    assert.equal(first.xCache, undefined, 'no X-Cache header on an uncached route');
    assert.equal(controller.plainCalls, 2, 'handler calls for two GETs');
  });
});
