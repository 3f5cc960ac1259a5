// Handlers that fail or answer by themselves: fail-safe (grace) covers failures of the source (a
// 500) but not its answers (a 403 once a document is withdrawn: RFC 9111 section 4.2.4 forbids
// serving stale over an explicit answer); a cached 404 keeps the handler's body; and a handler that
// answers through `@Res()` itself (no passthrough) runs once per request, is never served from the
// cache, and every request gets an answer. Each platform has an app and a key prefix of its own.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, ForbiddenException, Get, Module, NotFoundException, Param, Res, type Type } from '@nestjs/common';
import { CacheModule, Cacheable } from '@cachekit/cache';
import {
  REDIS_URL,
  closeApp,
  keyPrefixFor,
  request,
  sendJson,
  startHttpApp,
  type Answer,
  type HttpPlatform,
  type PlatformResponse,
  type RunningApp,
} from './support/harness.mjs';

/** A request that may hang gets this long, and the scenario says which request it was. */
const SHORT_TIMEOUT_MS = 1_500;
const TTL_MS = 200;

@Controller('documents')
class DocumentsController {
  withdrawn = false;
  broken = false;
  calls = 0;

  @Get('withdrawable')
  @Cacheable({ ttl: TTL_MS, grace: '1m' })
  withdrawable() {
    this.calls++;
    if (this.withdrawn) throw new ForbiddenException('document withdrawn');
    return { ok: true };
  }

  @Get('flaky')
  @Cacheable({ ttl: TTL_MS, grace: '1m' })
  flaky() {
    this.calls++;
    if (this.broken) throw new Error('database unreachable');
    return { ok: true };
  }

  @Get('items/:id')
  @Cacheable()
  item(@Param('id') id: string) {
    this.calls++;
    throw new NotFoundException(`item ${id} is gone`);
  }
}

@Controller('manual')
class ManualController {
  calls = 0;

  /** `@Res()` without passthrough: the handler sends the response itself, Nest sends nothing. */
  @Get('send')
  @Cacheable()
  send(@Res() res: PlatformResponse) {
    return sendJson(res, { n: ++this.calls });
  }

  /** The same, and the handler also returns a value (which Nest ignores). */
  @Get('send-and-return')
  @Cacheable()
  sendAndReturn(@Res() res: PlatformResponse) {
    const body = { n: ++this.calls };
    sendJson(res, body);
    return body;
  }
}

function appModule(platform: HttpPlatform): Type {
  @Module({
    imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor(`http-failures:${platform}`) })],
    controllers: [DocumentsController, ManualController],
  })
  class AppModule {}
  return AppModule;
}

const summary = (answers: Answer[], firstNumber: number) =>
  answers.map((a, i) => `#${i + firstNumber}: ${a.status} X-Cache ${a.xCache ?? '(none)'} ${a.text}`).join('; ');

/** One of a series of requests that may hang, with a short deadline; a failure says which one it was. */
async function requestNumbered(url: string, number: number): Promise<Answer> {
  try {
    return await request(url, { timeoutMs: SHORT_TIMEOUT_MS });
  } catch (error) {
    throw new Error(`request ${number} of 3: ${(error as Error).message}`);
  }
}

/** The requests after a change of the handler; a STALE answer is sent before its background refresh runs, so that refresh gets a moment to land. */
async function requestsAfterChange(url: string, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i++) {
    const answer = await request(url);
    answers.push(answer);
    if (answer.xCache === 'STALE') await sleep(150);
  }
  return answers;
}

for (const platform of ['express', 'fastify'] satisfies HttpPlatform[]) {
  describe(`failing handlers and @Res() handlers on ${platform}`, () => {
    let running: RunningApp;
    let documents: DocumentsController;
    let manual: ManualController;
    before(async () => {
      running = await startHttpApp(appModule(platform), platform);
      documents = running.app.get(DocumentsController);
      manual = running.app.get(ManualController);
    });
    after(() => closeApp(running?.app));

    it('fail-safe does not cover a 403: once the document is withdrawn, the third request at the latest is 403, and none after it a 200', async () => {
      const url = `${running.url}/documents/withdrawable`;
      const first = await request(url);
      assert.equal(first.status, 200, `first request: ${first.text}`);
      assert.equal(first.xCache, 'MISS', 'first request: X-Cache');
      documents.withdrawn = true;
      await sleep(TTL_MS + 100);
      const answers = await requestsAfterChange(url, 4);
      const seen = `requests after the withdrawal: ${summary(answers, 2)}`;
      const [second, third] = answers;
      assert.ok(
        second.status === 403 || (second.status === 200 && second.xCache === 'STALE'),
        `second request: 403, or (stale-while-revalidate) one 200 STALE; ${seen}`,
      );
      assert.equal(third.status, 403, `the third request at the latest must be 403; ${seen}`);
      const firstForbidden = answers.findIndex((a) => a.status === 403);
      for (const answer of answers.slice(firstForbidden)) {
        assert.equal(answer.status, 403, `no request after the first 403 may be served the withdrawn document; ${seen}`);
      }
      assert.equal(third.json().message, 'document withdrawn', `the 403 carries the handler's body: ${third.text}`);
    });

    it('fail-safe covers a 500 (a plain Error): the client keeps getting the old 200 with X-Cache: STALE', async () => {
      const url = `${running.url}/documents/flaky`;
      const first = await request(url);
      assert.equal(first.status, 200, `first request: ${first.text}`);
      assert.equal(first.xCache, 'MISS', 'first request: X-Cache');
      documents.broken = true;
      await sleep(TTL_MS + 100);
      const answers = await requestsAfterChange(url, 3);
      const seen = `requests after the failure: ${summary(answers, 2)}`;
      for (const [i, answer] of answers.entries()) {
        assert.equal(answer.status, 200, `request #${i + 2} must be served the old value; ${seen}`);
        assert.deepEqual(answer.json(), { ok: true }, `request #${i + 2}: body; ${seen}`);
        assert.equal(answer.xCache, 'STALE', `request #${i + 2}: X-Cache; ${seen}`);
      }
    });

    it("a cached 404 keeps the handler's body (message 'item 42 is gone')", async () => {
      const url = `${running.url}/documents/items/42`;
      const expected = { message: 'item 42 is gone', error: 'Not Found', statusCode: 404 };
      const first = await request(url);
      assert.equal(first.status, 404, `first request: ${first.text}`);
      assert.deepEqual(first.json(), expected, 'first request: body');
      assert.equal(first.xCache, 'MISS', 'first request: X-Cache');
      const before = documents.calls;
      const second = await request(url);
      assert.equal(second.status, 404, `second request: ${second.text}`);
      assert.deepEqual(second.json(), expected, `second request (X-Cache ${second.xCache}): the handler's 404 body`);
      assert.equal(second.xCache, 'HIT', 'second request: X-Cache');
      assert.equal(documents.calls, before, 'the handler did not run for the HIT');
    });

    it('@Res() without passthrough, a handler that sends the response itself (return res.json() / reply.send()): runs once per request, every request answers, never a HIT', async () => {
      const url = `${running.url}/manual/send`;
      const before = manual.calls;
      for (let i = 1; i <= 3; i++) {
        const answer = await requestNumbered(url, i);
        assert.equal(answer.status, 200, `request ${i}: ${answer.text}`);
        assert.equal(typeof answer.json().n, 'number', `request ${i}: the body the handler sent; got ${answer.text}`);
        assert.notEqual(answer.xCache, 'HIT', `request ${i}: X-Cache (the handler answers by itself: nothing to serve from the cache)`);
      }
      // A handler run twice for one request would do so right after the first run.
      await sleep(100);
      assert.equal(manual.calls - before, 3, 'the handler ran exactly once for each of the three requests');
    });

    it('@Res() without passthrough, a handler that sends the response itself and also returns a value: every request answers', async () => {
      const url = `${running.url}/manual/send-and-return`;
      for (let i = 1; i <= 3; i++) {
        const answer = await requestNumbered(url, i);
        assert.equal(answer.status, 200, `request ${i}: ${answer.text}`);
        assert.equal(typeof answer.json().n, 'number', `request ${i}: the body the handler sent; got ${answer.text}`);
      }
    });
  });
}
