// CacheAdminGuard on a route of the app's own, on Fastify and on Express: a request without the
// right token gets a JSON 401 (never a 500), the right token passes.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Module, Post, UseGuards } from '@nestjs/common';
import { CACHE_ADMIN_TOKEN, CacheAdminGuard, CacheModule } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type HttpPlatform, type RunningApp } from './support/harness.mjs';

const TOKEN = 'adoption-admin-token';

@Controller('admin')
class AdminController {
  @Post('flush')
  @UseGuards(CacheAdminGuard)
  flush() {
    return { flushed: true };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('admin-guard') })],
  controllers: [AdminController],
  providers: [{ provide: CACHE_ADMIN_TOKEN, useValue: TOKEN }],
})
class AppModule {}

for (const platform of ['fastify', 'express'] satisfies HttpPlatform[]) {
  describe(`CacheAdminGuard on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(AppModule, platform);
    });
    after(() => closeApp(running?.app));

    it('answers 401 JSON without a token', async () => {
      const answer = await request(`${running.url}/admin/flush`, { method: 'POST' });
      assert.equal(answer.status, 401, `status; body: ${answer.text}`);
      assert.match(answer.contentType, /^application\/json/, 'content type');
      assert.equal(answer.json().statusCode, 401, answer.text);
    });

    it('answers 401 JSON with a wrong token', async () => {
      const answer = await request(`${running.url}/admin/flush`, { method: 'POST', headers: { authorization: 'Bearer wrong' } });
      assert.equal(answer.status, 401, `status; body: ${answer.text}`);
      assert.match(answer.contentType, /^application\/json/, 'content type');
    });

    it('lets the right token through', async () => {
      const answer = await request(`${running.url}/admin/flush`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(answer.status, 201, answer.text);
      assert.deepEqual(answer.json(), { flushed: true });
    });
  });
}
