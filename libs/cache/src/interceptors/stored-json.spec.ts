import { type CallHandler, Controller, Get, Injectable, type NestInterceptor, Param } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { map, type Observable } from 'rxjs';
import request from 'supertest';
import type { L1Values } from '../cache.options.js';
import { Cacheable } from '../decorators/cacheable.decorator.js';
import { cacheModule, createApp, keyPrefix as prefix } from '../../test-support/cache-factory.js';

const user = (id: string) => ({
  id,
  name: 'Ada "Countess" Lovelace', // escaped quotes: a tagged Date cannot hide in a string
  note: '{"$date":0}',
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  logins: [new Date(0), { at: new Date(86_400_000) }],
  settings: { theme: 'dark' },
});

@Controller('users')
class UsersController {
  @Get(':id')
  @Cacheable({ ttl: '1m' })
  one(@Param('id') id: string) {
    return user(id);
  }
}

/** An interceptor outside the cache that changes the body: it must see the value, and its result must go out. */
@Injectable()
class Envelope implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((data) => ({ data })));
  }
}

let apps = 0;

/** An app of its own: its own L1, and its own keys unless `keyPrefix` says which to share. */
async function start(
  adapter: 'express' | 'fastify',
  options: { values?: L1Values; envelope?: boolean; jsonSpaces?: number; keyPrefix?: string } = {},
) {
  const metadata = {
    imports: [cacheModule({ keyPrefix: options.keyPrefix ?? `${prefix}${apps++}:`, l1: { values: options.values } })],
    controllers: [UsersController],
    providers: options.envelope ? [{ provide: APP_INTERCEPTOR, useClass: Envelope }] : [],
  };
  if (adapter === 'express') {
    const { jsonSpaces } = options;
    return createApp<NestExpressApplication>(metadata, {
      beforeInit: (app) => {
        if (jsonSpaces !== undefined) app.set('json spaces', jsonSpaces);
      },
    });
  }
  const app = await createApp<NestFastifyApplication>(metadata, { adapter: new FastifyAdapter() });
  await app.getHttpAdapter().getInstance().ready();
  return app;
}

/** The uncached answer, as the adapter serializes the handler's value. */
const expected = (id: string, spaces?: number) => JSON.stringify(user(id), null, spaces);

describe.each(['express', 'fastify'] as const)('a hit on %s sends the stored JSON, byte for byte what a miss sends', (adapter) => {
  it.each(['copies', 'frozen'] as const)('with l1.values %s: an L1 hit, and an L2 hit on another instance', async (values) => {
    const keyPrefix = `${prefix}${adapter}-${values}:`;
    const app = await start(adapter, { values, keyPrefix });
    const miss = await request(app.getHttpServer()).get('/users/7').expect(200);
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(miss.text).toBe(expected('7'));
    const hit = await request(app.getHttpServer()).get('/users/7').expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['content-type']).toMatch(/^application\/json/);
    expect(hit.text).toBe(expected('7'));

    const other = await start(adapter, { values, keyPrefix }); // an empty L1 on the same Redis entries
    const fromRedis = await request(other.getHttpServer()).get('/users/7').expect(200);
    expect(fromRedis.headers['x-cache']).toBe('HIT');
    expect(fromRedis.text).toBe(expected('7'));
  });

  it('an interceptor outside the cache that maps the body still gets the value, and its result goes out', async () => {
    const app = await start(adapter, { envelope: true });
    const miss = await request(app.getHttpServer()).get('/users/8').expect(200);
    const hit = await request(app.getHttpServer()).get('/users/8').expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.text).toBe(miss.text);
    expect(hit.text).toBe(JSON.stringify({ data: user('8') }));
  });
});

it('Express with its own JSON settings (json spaces): a hit is serialized the way the app asks', async () => {
  const app = await start('express', { jsonSpaces: 2 });
  await request(app.getHttpServer()).get('/users/9').expect(200);
  const hit = await request(app.getHttpServer()).get('/users/9').expect(200);
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.text).toBe(expected('9', 2));
});
