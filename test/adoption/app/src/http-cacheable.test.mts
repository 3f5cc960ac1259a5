// @Cacheable and @CacheEvict on an Express controller, as the README shows them.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module, Param, Post } from '@nestjs/common';
import { CacheEvict, CacheModule, CacheService, Cacheable, keyPart } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

@Controller('items')
class ItemsController {
  calls = 0;

  @Get()
  @Cacheable({ namespace: 'lists', tags: ['items'] })
  list() {
    this.calls++;
    return { items: ['1', '2'], loadedAt: this.calls };
  }

  @Post()
  @CacheEvict({ namespace: 'lists', tags: ['items'] })
  create() {
    return { id: '3' };
  }

  @Get(':id')
  @Cacheable()
  findOne(@Param('id') id: string) {
    this.calls++;
    return { id, loadedAt: this.calls };
  }

  @Get(':id/keyed')
  @Cacheable({ key: (request) => `item:${keyPart(request.params.id)}` })
  findKeyed(@Param('id') id: string) {
    this.calls++;
    return { id, loadedAt: this.calls };
  }

  // One key from the request, one from the handler's result: proves both reach the function.
  @Post(':id/rename/:to')
  @CacheEvict({ keys: (request, result) => [`item:${keyPart(request.params.id)}`, `item:${keyPart(result.renamedTo)}`] })
  rename(@Param('id') id: string, @Param('to') to: string) {
    return { id, renamedTo: to };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('http-cacheable') })],
  controllers: [ItemsController],
})
class AppModule {}

describe('@Cacheable / @CacheEvict on an Express controller', () => {
  let running: RunningApp;
  let controller: ItemsController;
  let cache: CacheService;
  before(async () => {
    running = await startHttpApp(AppModule);
    controller = running.app.get(ItemsController);
    cache = running.app.get(CacheService);
  });
  after(() => closeApp(running?.app));

  it('answers MISS, then HIT from the cache without running the handler again', async () => {
    const callsBefore = controller.calls;
    const first = await request(`${running.url}/items/1`);
    const second = await request(`${running.url}/items/1`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.xCache, 'MISS', 'first GET: X-Cache header');
    assert.equal(second.xCache, 'HIT', 'second GET: X-Cache header');
    assert.deepEqual(second.json(), first.json(), 'the HIT carries the body of the MISS');
    assert.equal(controller.calls - callsBefore, 1, 'handler runs once for two GETs');
  });

  it('uses the key function and the default namespace "http"', async () => {
    const first = await request(`${running.url}/items/2/keyed`);
    assert.equal(first.xCache, 'MISS');
    assert.deepEqual(await cache.namespace('http').get('item:2'), first.json(), 'entry "item:2" in namespace "http"');
    assert.equal((await request(`${running.url}/items/2/keyed`)).xCache, 'HIT');
  });

  it('@CacheEvict gets the request and the handler result, and evicts after the handler', async () => {
    for (const id of ['5', '6']) {
      await request(`${running.url}/items/${id}/keyed`);
      assert.equal((await request(`${running.url}/items/${id}/keyed`)).xCache, 'HIT', `item ${id} cached before the eviction`);
    }
    const renamed = await request(`${running.url}/items/5/rename/6`, { method: 'POST' });
    assert.equal(renamed.status, 201, renamed.text);
    assert.equal(await cache.namespace('http').has('item:5'), false, 'key from the request (item:5) evicted');
    assert.equal(await cache.namespace('http').has('item:6'), false, 'key from the result (item:6) evicted');
    assert.equal((await request(`${running.url}/items/5/keyed`)).xCache, 'MISS', 'GET after the eviction');
  });

  it('@CacheEvict with a namespace and tags invalidates the tagged entries of that namespace', async () => {
    await request(`${running.url}/items`);
    assert.equal((await request(`${running.url}/items`)).xCache, 'HIT', 'list cached before the eviction');
    const created = await request(`${running.url}/items`, { method: 'POST' });
    assert.equal(created.status, 201, created.text);
    assert.equal((await request(`${running.url}/items`)).xCache, 'MISS', 'GET of the list after the tag "items" was invalidated');
  });
});
