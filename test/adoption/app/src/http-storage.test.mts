// What a `@Cacheable` route may store and how a HIT replays it (RFC 9111 sections 3 and 4):
// a response that sets a cookie (a per-visitor CSRF token) or says `Cache-Control: no-store` is
// never stored; a stream is sent as the stream, never as a JSON dump of the StreamableFile; a
// HIT replays the content type the handler set, byte for byte; what a global
// ClassSerializerInterceptor strips stays stripped on a HIT; and a body over `maxEntrySize` is
// served but never stored. Each platform has its apps and key prefixes of its own.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ClassSerializerInterceptor, Controller, Get, Header, Module, Param, Res, StreamableFile, type Type } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { CacheModule, Cacheable } from '@cachekit/cache';
import { Exclude } from 'class-transformer';
import {
  REDIS_URL,
  closeApp,
  cookieFrom,
  keyPrefixFor,
  request,
  setCookie,
  setHeader,
  startHttpApp,
  type HttpPlatform,
  type PlatformResponse,
  type RunningApp,
} from './support/harness.mjs';

const CSV = 'a,b\n1,2';

@Controller('storage')
class StorageController {
  calls = 0;

  /** A form page: each visitor gets a CSRF token of its own, in a cookie and in the body. */
  @Get('form')
  @Cacheable()
  form(@Res({ passthrough: true }) res: PlatformResponse) {
    this.calls++;
    const token = randomUUID();
    setCookie(res, 'csrf', token);
    return { csrfToken: token };
  }

  @Get('no-store/handler')
  @Cacheable()
  noStoreFromHandler(@Res({ passthrough: true }) res: PlatformResponse) {
    setHeader(res, 'Cache-Control', 'no-store');
    return { balance: ++this.calls };
  }

  @Get('no-store/static')
  @Header('Cache-Control', 'no-store')
  @Cacheable()
  noStoreStatic() {
    return { balance: ++this.calls };
  }

  @Get('stream')
  @Header('Content-Type', 'text/plain')
  @Cacheable()
  stream() {
    this.calls++;
    return new StreamableFile(Buffer.from('hello stream'));
  }

  @Get('export-csv')
  @Cacheable()
  csv(@Res({ passthrough: true }) res: PlatformResponse) {
    this.calls++;
    setHeader(res, 'Content-Type', 'text/csv');
    return CSV;
  }
}

class UserView {
  id!: string;
  name!: string;
  @Exclude()
  passwordHash!: string;

  constructor(init: UserView) {
    Object.assign(this, init);
  }
}

@Controller('serialized')
class SerializedController {
  calls = 0;

  @Get('users/:id')
  @Cacheable()
  user(@Param('id') id: string) {
    this.calls++;
    return new UserView({ id, name: 'Alice', passwordHash: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA' });
  }
}

const BIG = { rows: Array.from({ length: 100 }, (_, i) => ({ i, text: `row ${String(i).padStart(3, '0')} `.padEnd(40, 'x') })) };

@Controller('sized')
class SizedController {
  calls = 0;

  @Get('big')
  @Cacheable()
  big() {
    this.calls++;
    return BIG;
  }
}

const cacheModule = (platform: HttpPlatform, app: string) =>
  CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor(`http-storage:${app}:${platform}`) });

function storageModule(platform: HttpPlatform): Type {
  @Module({ imports: [cacheModule(platform, 'main')], controllers: [StorageController] })
  class StorageModule {}
  return StorageModule;
}

function serializerModule(platform: HttpPlatform): Type {
  @Module({
    imports: [cacheModule(platform, 'serializer')],
    controllers: [SerializedController],
    providers: [{ provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor }],
  })
  class SerializerModule {}
  return SerializerModule;
}

function sizedModule(platform: HttpPlatform): Type {
  @Module({
    imports: [
      CacheModule.forRoot({
        isGlobal: true,
        redis: { url: REDIS_URL },
        keyPrefix: keyPrefixFor(`http-storage:sized:${platform}`),
        maxEntrySize: 1024,
      }),
    ],
    controllers: [SizedController],
  })
  class SizedModule {}
  return SizedModule;
}

for (const platform of ['express', 'fastify'] satisfies HttpPlatform[]) {
  describe(`what a @Cacheable route stores and replays, on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(storageModule(platform), platform);
    });
    after(() => closeApp(running?.app));

    const calls = () => running.app.get(StorageController).calls;

    it('a GET that sets a cookie (CSRF token) is never stored: the second visitor gets its own token and cookie', async () => {
      const url = `${running.url}/storage/form`;
      const first = await request(url);
      assert.equal(first.status, 200, `first request: ${first.text}`);
      const firstToken = first.json().csrfToken;
      assert.equal(
        cookieFrom(first, 'csrf'),
        firstToken,
        `first visitor: the csrf cookie holds the body's token; Set-Cookie: ${first.headers.getSetCookie().join(' | ')}`,
      );
      assert.equal(first.xCache, 'MISS', 'first visitor: X-Cache');
      const second = await request(url);
      assert.equal(second.status, 200, `second request: ${second.text}`);
      const secondToken = second.json().csrfToken;
      assert.notEqual(
        secondToken,
        firstToken,
        `the second visitor must get a token of its own, not the first visitor's; got X-Cache ${second.xCache}`,
      );
      const secondCookie = cookieFrom(second, 'csrf');
      assert.notEqual(secondCookie, firstToken, "the second visitor must never get the first visitor's cookie");
      assert.equal(
        secondCookie,
        secondToken,
        `second visitor: a csrf cookie with its own token; Set-Cookie: ${second.headers.getSetCookie().join(' | ') || '(none)'}`,
      );
      assert.equal(second.xCache, 'MISS', 'second visitor: X-Cache');
    });

    for (const [how, path] of [
      ['set by the handler on the passthrough response', 'no-store/handler'],
      ["set statically with @Header('Cache-Control', 'no-store')", 'no-store/static'],
    ] as const) {
      it(`Cache-Control: no-store ${how}: never served from the cache`, async () => {
        const url = `${running.url}/storage/${path}`;
        const before = calls();
        const answers = [];
        for (let i = 0; i < 3; i++) answers.push(await request(url));
        for (const [i, answer] of answers.entries()) {
          assert.equal(answer.status, 200, `request ${i + 1}: ${answer.text}`);
          assert.notEqual(
            answer.xCache,
            'HIT',
            `request ${i + 1} of 3 was served from the cache (${answer.text}); a no-store response must never be`,
          );
          assert.match(answer.headers.get('cache-control') ?? '', /no-store/, `request ${i + 1}: Cache-Control header`);
        }
        assert.equal(calls() - before, 3, 'the handler ran for each of the three requests');
      });
    }

    it('a StreamableFile is sent as the stream on every request, never as a JSON dump of it', async () => {
      const url = `${running.url}/storage/stream`;
      const first = await request(url);
      assert.equal(first.status, 200, `first request: ${first.text}`);
      assert.equal(first.text, 'hello stream', 'first request: body');
      const second = await request(url);
      assert.equal(second.status, 200, `second request: ${second.text}`);
      assert.equal(second.text, 'hello stream', `second request: body (X-Cache ${second.xCache})`);
      assert.match(second.contentType, /^text\/plain/, 'second request: content type');
      assert.ok(
        second.xCache === 'MISS' || second.xCache === 'HIT',
        `second request: X-Cache MISS (not stored) or HIT (stored as bytes); got ${second.xCache}`,
      );
    });

    it('a HIT replays the content type the handler set and the body, byte for byte (text/csv)', async () => {
      const url = `${running.url}/storage/export-csv`;
      const miss = await request(url);
      assert.equal(miss.status, 200, `first request: ${miss.text}`);
      assert.equal(miss.xCache, 'MISS', 'first request: X-Cache');
      assert.equal(miss.text, CSV, 'first request: body');
      assert.match(miss.contentType, /^text\/csv/, 'first request: content type');
      const before = calls();
      const hit = await request(url);
      assert.equal(hit.status, 200, `second request: ${hit.text}`);
      assert.equal(hit.xCache, 'HIT', 'second request: X-Cache');
      assert.equal(hit.contentType, miss.contentType, 'second request (HIT): the content type of the MISS');
      assert.equal(hit.text, miss.text, 'second request (HIT): the body of the MISS, byte for byte');
      assert.equal(calls(), before, 'the handler did not run for the HIT');
    });
  });

  describe(`a global ClassSerializerInterceptor and @Cacheable, on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(serializerModule(platform), platform);
    });
    after(() => closeApp(running?.app));

    it('neither the MISS nor the HIT has the @Exclude()d field, and they are byte-identical', async () => {
      const url = `${running.url}/serialized/users/7`;
      const miss = await request(url);
      assert.equal(miss.status, 200, `first request: ${miss.text}`);
      assert.equal(miss.xCache, 'MISS', 'first request: X-Cache');
      assert.doesNotMatch(miss.text, /passwordHash/, 'first request (MISS): the @Exclude()d passwordHash is not in the body');
      assert.deepEqual(miss.json(), { id: '7', name: 'Alice' });
      const hit = await request(url);
      assert.equal(hit.status, 200, `second request: ${hit.text}`);
      assert.doesNotMatch(
        hit.text,
        /passwordHash/,
        `second request (X-Cache ${hit.xCache}): the @Exclude()d passwordHash is not in the body`,
      );
      assert.equal(hit.xCache, 'HIT', 'second request: X-Cache');
      assert.equal(hit.text, miss.text, 'the HIT is byte-identical to the MISS');
      assert.equal(running.app.get(SerializedController).calls, 1, 'the handler ran once');
    });
  });

  describe(`maxEntrySize, on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(sizedModule(platform), platform);
    });
    after(() => closeApp(running?.app));

    it('a 5 KB body with maxEntrySize: 1024 is served in full every time, never from the cache', async () => {
      const url = `${running.url}/sized/big`;
      const calls = () => running.app.get(SizedController).calls;
      const before = calls();
      for (let i = 1; i <= 3; i++) {
        const answer = await request(url);
        assert.equal(answer.status, 200, `request ${i}: status; body: ${answer.text.slice(0, 200)}`);
        assert.ok(Buffer.byteLength(answer.text) > 4096, `request ${i}: the full body (${Buffer.byteLength(answer.text)} bytes)`);
        assert.deepEqual(answer.json(), BIG, `request ${i}: body`);
        assert.notEqual(answer.xCache, 'HIT', `request ${i}: X-Cache (a body over maxEntrySize is never stored)`);
      }
      assert.equal(calls() - before, 3, 'the handler ran for each of the three requests');
    });
  });
}
