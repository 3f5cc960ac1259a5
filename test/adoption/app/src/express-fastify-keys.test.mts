// The same controller on Express and on Fastify, sharing one Redis and one keyPrefix: the default
// HTTP key must not depend on the platform (route template, params, query in any order), so an
// entry written by one is a HIT on the other. L1 is off so that every HIT comes from Redis.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, Module, Param, Query } from '@nestjs/common';
import { CacheModule, Cacheable } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type RunningApp } from './support/harness.mjs';

@Controller('catalog')
class CatalogController {
  calls = 0;

  @Get(':category/items')
  @Cacheable()
  list(@Param('category') category: string, @Query() query: Record<string, string>) {
    this.calls++;
    return { category, page: query.page ?? null, sort: query.sort ?? null };
  }
}

@Module({
  imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor('express-fastify-keys'), l1: false })],
  controllers: [CatalogController],
})
class AppModule {}

describe('Express and Fastify share default HTTP keys', () => {
  let express: RunningApp;
  let fastify: RunningApp;
  before(async () => {
    express = await startHttpApp(AppModule, 'express');
    fastify = await startHttpApp(AppModule, 'fastify');
  });
  after(async () => {
    await closeApp(express?.app);
    await closeApp(fastify?.app);
  });

  const calls = (running: RunningApp) => running.app.get(CatalogController).calls;

  it('an entry cached through Express is a HIT on Fastify (query in another order)', async () => {
    const fromExpress = await request(`${express.url}/catalog/books/items?sort=title&page=2`);
    assert.equal(fromExpress.status, 200, fromExpress.text);
    assert.equal(fromExpress.xCache, 'MISS', 'Express, first request');
    const fastifyCalls = calls(fastify);
    const fromFastify = await request(`${fastify.url}/catalog/books/items?page=2&sort=title`);
    assert.equal(fromFastify.status, 200, fromFastify.text);
    assert.equal(fromFastify.xCache, 'HIT', 'Fastify, same route, params and query');
    assert.deepEqual(fromFastify.json(), fromExpress.json());
    assert.equal(calls(fastify), fastifyCalls, 'the Fastify handler did not run');
  });

  it('an entry cached through Fastify is a HIT on Express', async () => {
    const fromFastify = await request(`${fastify.url}/catalog/games/items?page=3&sort=name`);
    assert.equal(fromFastify.status, 200, fromFastify.text);
    assert.equal(fromFastify.xCache, 'MISS', 'Fastify, first request');
    const expressCalls = calls(express);
    const fromExpress = await request(`${express.url}/catalog/games/items?sort=name&page=3`);
    assert.equal(fromExpress.xCache, 'HIT', 'Express, same route, params and query');
    assert.deepEqual(fromExpress.json(), fromFastify.json());
    assert.equal(calls(express), expressCalls, 'the Express handler did not run');
  });

  it('different params or query values are different entries on both', async () => {
    assert.equal((await request(`${express.url}/catalog/books/items?sort=title&page=3`)).xCache, 'MISS', 'other query value');
    assert.equal((await request(`${fastify.url}/catalog/films/items?sort=title&page=2`)).xCache, 'MISS', 'other path param');
  });
});
