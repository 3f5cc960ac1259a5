// What the default HTTP key must tell apart (RFC 9111 section 4.1: a stored response answers only
// a request for the same resource): the host params of `@Controller({ host })`, the version of a
// header-versioned route, and the spelling of the query (`?a=1&a=2` is not `?a=["1","2"]`). In
// each case the second client asks for another resource than the first and must get its own answer.
// Each platform has an app and a key prefix of its own.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, HostParam, Module, Query, type Type, Version, VersioningType } from '@nestjs/common';
import { CacheModule, Cacheable } from '@cachekit/cache';
import { REDIS_URL, closeApp, keyPrefixFor, request, startHttpApp, type HttpPlatform, type RunningApp } from './support/harness.mjs';

@Controller({ host: ':tenant.example.com', path: 'tenant-data' })
class TenantController {
  calls = 0;

  @Get()
  @Cacheable()
  data(@HostParam('tenant') tenant: string) {
    this.calls++;
    return { tenant, data: `records of ${tenant}` };
  }
}

/** Two versions of one route in one controller. */
@Controller('versioned')
class VersionedController {
  @Get()
  @Version('1')
  @Cacheable()
  findV1() {
    return { version: '1', shape: 'flat' };
  }

  @Get()
  @Version('2')
  @Cacheable()
  findV2() {
    return { version: '2', shape: 'nested', items: [] };
  }
}

/**
 * Two versions of one route as an app lays them out in `v1/` and `v2/` folders: each folder has
 * its `ReportsController` with a `find()` method, so the class and method names are the same.
 */
function reportsController(version: string): Type {
  @Controller('reports')
  class ReportsController {
    @Get()
    @Version(version)
    @Cacheable()
    find() {
      return { version, report: `report in the v${version} format` };
    }
  }
  return ReportsController;
}

@Controller('echo')
class EchoController {
  @Get(':round')
  @Cacheable()
  echo(@Query() query: Record<string, unknown>) {
    return { query };
  }
}

function appModule(platform: HttpPlatform): Type {
  @Module({
    imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor(`http-keys:${platform}`) })],
    controllers: [TenantController, VersionedController, reportsController('1'), reportsController('2'), EchoController],
  })
  class AppModule {}
  return AppModule;
}

for (const platform of ['express', 'fastify'] satisfies HttpPlatform[]) {
  describe(`what the default HTTP key tells apart on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(appModule(platform), platform, (app) =>
        app.enableVersioning({ type: VersioningType.HEADER, header: 'x-api-version' }),
      );
    });
    after(() => closeApp(running?.app));

    // Nest filters hosts itself (RouterExplorer.applyHostFilter) on both adapters: on Fastify a
    // request for another host is answered 404, which this route, the only one on its path, wants.
    it('host params of @Controller({ host }): tenant b gets its own data, tenant a a HIT with its own', async () => {
      const url = `${running.url}/tenant-data`;
      const calls = () => running.app.get(TenantController).calls;
      const a = await request(url, { host: 'a.example.com' });
      assert.equal(a.status, 200, a.text);
      assert.deepEqual(a.json(), { tenant: 'a', data: 'records of a' });
      assert.equal(a.xCache, 'MISS', 'tenant a, first: X-Cache');
      const b = await request(url, { host: 'b.example.com' });
      assert.equal(b.status, 200, b.text);
      assert.deepEqual(
        b.json(),
        { tenant: 'b', data: 'records of b' },
        `Host: b.example.com must get the data of tenant b; got X-Cache ${b.xCache}`,
      );
      assert.equal(b.xCache, 'MISS', 'tenant b: X-Cache');
      const before = calls();
      const aAgain = await request(url, { host: 'a.example.com' });
      assert.equal(aAgain.status, 200, aAgain.text);
      assert.deepEqual(aAgain.json(), a.json(), 'tenant a, again: its own data');
      assert.equal(aAgain.xCache, 'HIT', 'tenant a, again: X-Cache');
      assert.equal(calls(), before, 'the handler did not run for the HIT');
    });

    for (const [what, path] of [
      ['two handlers of one controller', 'versioned'],
      ['two controllers of the same name (v1/ and v2/ folders)', 'reports'],
    ] as const) {
      it(`header versioning, ${what}: the v2 client gets the v2 body after a v1 client`, async () => {
        const url = `${running.url}/${path}`;
        const v1 = await request(url, { headers: { 'x-api-version': '1' } });
        assert.equal(v1.status, 200, v1.text);
        assert.equal(v1.json().version, '1', v1.text);
        assert.equal(v1.xCache, 'MISS', 'v1 client: X-Cache');
        const v2 = await request(url, { headers: { 'x-api-version': '2' } });
        assert.equal(v2.status, 200, v2.text);
        assert.equal(v2.json().version, '2', `x-api-version: 2 must get the v2 body; got ${v2.text} with X-Cache ${v2.xCache}`);
        assert.equal(v2.xCache, 'MISS', 'v2 client: X-Cache');
        const v1Again = await request(url, { headers: { 'x-api-version': '1' } });
        assert.equal(v1Again.json().version, '1', v1Again.text);
        assert.equal(v1Again.xCache, 'HIT', 'v1 client, again: X-Cache');
        const v2Again = await request(url, { headers: { 'x-api-version': '2' } });
        assert.equal(v2Again.json().version, '2', v2Again.text);
        assert.equal(v2Again.xCache, 'HIT', 'v2 client, again: X-Cache');
      });
    }

    const repeated = 'a=1&a=2';
    const jsonText = `a=${encodeURIComponent('["1","2"]')}`;
    for (const [round, first, second] of [
      ['repeated-first', repeated, jsonText],
      ['json-first', jsonText, repeated],
    ] as const) {
      it(`query spellings (${round}): ?${second} after ?${first} is a MISS with its own echo`, async () => {
        const url = `${running.url}/echo/${round}`;
        const expected = (spelling: string) => (spelling === repeated ? { query: { a: ['1', '2'] } } : { query: { a: '["1","2"]' } });
        const one = await request(`${url}?${first}`);
        assert.equal(one.status, 200, one.text);
        assert.deepEqual(one.json(), expected(first), `?${first}: echo`);
        assert.equal(one.xCache, 'MISS', `?${first}: X-Cache`);
        const two = await request(`${url}?${second}`);
        assert.equal(two.status, 200, two.text);
        assert.deepEqual(two.json(), expected(second), `?${second} must get its own echo; got X-Cache ${two.xCache}`);
        assert.equal(two.xCache, 'MISS', `?${second}: X-Cache`);
      });
    }
  });
}
