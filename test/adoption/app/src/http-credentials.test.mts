// Who may be served a shared response (RFC 9111 section 3.5): a request carries credentials when
// it has an Authorization header or a cookie, but also when a guard authenticated it any other way
// (an X-Api-Key, a session header no list names): `request.user` set by a guard is enough. Such a
// request is never served someone else's entry and, without `vary: 'user'`, not cached at all
// (`X-Cache: BYPASS`). And a response marked `Cache-Control: private` is not stored for anonymous
// requests, only per principal on a `vary: 'user'` route. Each platform has an app and a key prefix
// of its own, so every first request is a MISS on both.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  Injectable,
  Module,
  Req,
  Res,
  type Type,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { CacheModule, Cacheable } from '@cachekit/cache';
import {
  REDIS_URL,
  closeApp,
  keyPrefixFor,
  request,
  setHeader,
  startHttpApp,
  type HttpPlatform,
  type PlatformResponse,
  type RunningApp,
} from './support/harness.mjs';

interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  user?: { id: string };
}

const requestOf = (context: ExecutionContext) => context.switchToHttp().getRequest<AuthRequest>();

/** An API-key scheme of the app's own: not a header any list of credentials would know by default. */
@Injectable()
class ApiKeyGuard implements CanActivate {
  static readonly keys: Record<string, string> = { 'alice-key': 'alice', 'bob-key': 'bob' };

  canActivate(context: ExecutionContext): boolean {
    const request = requestOf(context);
    const key = request.headers['x-api-key'];
    const id = typeof key === 'string' ? ApiKeyGuard.keys[key] : undefined;
    if (!id) throw new UnauthorizedException('unknown API key');
    request.user = { id };
    return true;
  }
}

/** A session header with a name of the app's own choosing: only `request.user` shows it is a credential. */
@Injectable()
class SessionGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = requestOf(context);
    const session = request.headers['x-session'];
    if (typeof session !== 'string' || !/^[a-z0-9-]+$/.test(session)) throw new UnauthorizedException('no session');
    request.user = { id: `user-of-${session}` };
    return true;
  }
}

/** Bearer tokens: the Authorization header every rule knows, for the `Cache-Control: private` cases. */
@Injectable()
class BearerGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = requestOf(context);
    const match = /^Bearer ([a-z]+)-token$/.exec(String(request.headers.authorization ?? ''));
    if (!match) throw new UnauthorizedException('no bearer token');
    request.user = { id: match[1] };
    return true;
  }
}

const privateData = (id: string, calls: number) => ({ owner: id, iban: `${id.toUpperCase()}-0001`, calls });

@Controller('account')
class AccountController {
  calls = 0;

  @Get('statement')
  @UseGuards(ApiKeyGuard)
  @Cacheable()
  statement(@Req() request: AuthRequest) {
    return privateData(request.user!.id, ++this.calls);
  }

  @Get('statement-per-user')
  @UseGuards(ApiKeyGuard)
  @Cacheable({ vary: 'user' })
  statementPerUser(@Req() request: AuthRequest) {
    return privateData(request.user!.id, ++this.calls);
  }

  @Get('session-statement')
  @UseGuards(SessionGuard)
  @Cacheable()
  sessionStatement(@Req() request: AuthRequest) {
    return privateData(request.user!.id, ++this.calls);
  }
}

@Controller('private')
class PrivateController {
  calls = 0;

  /** Anonymous, but the handler marks the response private (per visitor, say a recommendation). */
  @Get('anonymous')
  @Cacheable()
  anonymous(@Res({ passthrough: true }) res: PlatformResponse) {
    setHeader(res, 'Cache-Control', 'private');
    return { visitorView: ++this.calls };
  }

  @Get('inbox')
  @UseGuards(BearerGuard)
  @Cacheable({ vary: 'user' })
  inbox(@Req() request: AuthRequest, @Res({ passthrough: true }) res: PlatformResponse) {
    setHeader(res, 'Cache-Control', 'private');
    return privateData(request.user!.id, ++this.calls);
  }
}

function appModule(platform: HttpPlatform): Type {
  @Module({
    imports: [CacheModule.forRoot({ isGlobal: true, redis: { url: REDIS_URL }, keyPrefix: keyPrefixFor(`http-credentials:${platform}`) })],
    controllers: [AccountController, PrivateController],
  })
  class AppModule {}
  return AppModule;
}

const alice = { 'x-api-key': 'alice-key' };
const bob = { 'x-api-key': 'bob-key' };

for (const platform of ['express', 'fastify'] satisfies HttpPlatform[]) {
  describe(`credentials and Cache-Control: private on ${platform}`, () => {
    let running: RunningApp;
    before(async () => {
      running = await startHttpApp(appModule(platform), platform);
    });
    after(() => closeApp(running?.app));

    const calls = (controller: Type<{ calls: number }>) => running.app.get(controller).calls;

    it("an X-Api-Key user (request.user set by a guard) is never served another user's entry, and not cached without vary", async () => {
      const url = `${running.url}/account/statement`;
      const before = calls(AccountController);
      const first = await request(url, { headers: alice });
      const second = await request(url, { headers: bob });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json().owner, 'alice', first.text);
      assert.equal(second.status, 200, second.text);
      assert.equal(
        second.json().owner,
        'bob',
        `Bob (X-Api-Key: bob-key) must get his own statement, never Alice's; got ${second.text} with X-Cache ${second.xCache}`,
      );
      assert.equal(first.xCache, 'BYPASS', 'Alice: X-Cache (a request with credentials on a route without vary is not cached)');
      assert.equal(second.xCache, 'BYPASS', 'Bob: X-Cache');
      const again = await request(url, { headers: alice });
      assert.equal(again.json().owner, 'alice', again.text);
      assert.equal(again.xCache, 'BYPASS', 'Alice again: X-Cache');
      assert.equal(calls(AccountController) - before, 3, 'the handler ran for each of the three requests');
    });

    it("with vary: 'user', each X-Api-Key user gets their own entry, and Alice's second request is a HIT", async () => {
      const url = `${running.url}/account/statement-per-user`;
      const first = await request(url, { headers: alice });
      const second = await request(url, { headers: bob });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json().owner, 'alice', first.text);
      assert.equal(first.xCache, 'MISS', 'Alice, first: X-Cache');
      assert.equal(second.status, 200, second.text);
      assert.equal(
        second.json().owner,
        'bob',
        `Bob must get his own statement, never Alice's; got ${second.text} with X-Cache ${second.xCache}`,
      );
      assert.equal(second.xCache, 'MISS', 'Bob, first: X-Cache');
      const before = calls(AccountController);
      const aliceAgain = await request(url, { headers: alice });
      assert.equal(aliceAgain.status, 200, aliceAgain.text);
      assert.deepEqual(aliceAgain.json(), first.json(), "Alice's second request gets her own (cached) statement");
      assert.equal(aliceAgain.xCache, 'HIT', "Alice's second request: X-Cache");
      const bobAgain = await request(url, { headers: bob });
      assert.deepEqual(bobAgain.json(), second.json(), "Bob's second request gets his own (cached) statement");
      assert.equal(bobAgain.xCache, 'HIT', "Bob's second request: X-Cache");
      assert.equal(calls(AccountController), before, 'the handler did not run for the HITs');
    });

    it('a guard that sets request.user from a custom header (x-session) makes the request one with credentials', async () => {
      const url = `${running.url}/account/session-statement`;
      const first = await request(url, { headers: { 'x-session': 's1' } });
      const second = await request(url, { headers: { 'x-session': 's2' } });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json().owner, 'user-of-s1', first.text);
      assert.equal(second.status, 200, second.text);
      assert.equal(
        second.json().owner,
        'user-of-s2',
        `session s2 must get its own statement, never that of session s1; got ${second.text} with X-Cache ${second.xCache}`,
      );
      assert.equal(first.xCache, 'BYPASS', 'session s1: X-Cache');
      assert.equal(second.xCache, 'BYPASS', 'session s2: X-Cache');
    });

    it('a Cache-Control: private response is not stored for anonymous requests', async () => {
      const url = `${running.url}/private/anonymous`;
      const before = calls(PrivateController);
      const first = await request(url);
      const second = await request(url);
      assert.equal(first.status, 200, first.text);
      assert.equal(second.status, 200, second.text);
      assert.notEqual(
        second.xCache,
        'HIT',
        `second anonymous request: a private response must not be served from the cache; got ${second.text}`,
      );
      assert.notDeepEqual(second.json(), first.json(), 'the second anonymous visitor gets a view of its own');
      assert.equal(calls(PrivateController) - before, 2, 'the handler ran for both anonymous requests');
    });

    it("a Cache-Control: private response on a vary: 'user' route is stored per principal", async () => {
      const url = `${running.url}/private/inbox`;
      const asAlice = { authorization: 'Bearer alice-token' };
      const asBob = { authorization: 'Bearer bob-token' };
      const first = await request(url, { headers: asAlice });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json().owner, 'alice', first.text);
      assert.equal(first.xCache, 'MISS', 'Alice, first: X-Cache');
      const bobFirst = await request(url, { headers: asBob });
      assert.equal(bobFirst.json().owner, 'bob', `Bob must get his own inbox, never Alice's; got ${bobFirst.text}`);
      const before = calls(PrivateController);
      const second = await request(url, { headers: asAlice });
      assert.equal(second.status, 200, second.text);
      assert.deepEqual(second.json(), first.json(), "Alice's second request gets her own inbox");
      assert.equal(second.xCache, 'HIT', "Alice's second request: X-Cache (a private response is stored for its principal)");
      assert.equal(calls(PrivateController), before, 'the handler did not run for the HIT');
    });
  });
}
