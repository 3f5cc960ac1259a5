// One server of bench/http-instructions.bench.ts, run under callgrind: `node --single-threaded
// bench/http-instructions-case.mjs <express|fastify> <variant> <port>`.
// The app of bench/http-server.ts (one route `GET /users/:id` answering the same small user, on
// 127.0.0.1) in plain JavaScript on the built package, so that no TypeScript compiler runs under
// callgrind: the decorators are applied by hand. `BENCH_BODY_USERS=N` (N > 1): the route answers a page
// of N users, as in bench/http-server.ts. L1 keeps entries 10 minutes (not 10 s): under callgrind a
// run takes minutes, and only L1 hits are measured. Prints `listening` once it serves; closes on
// SIGTERM (the cachekit case deletes its keys first).
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Controller, Get, Injectable, Module, Param, UseInterceptors } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { CacheInterceptor as CacheManagerInterceptor, CacheModule as CacheManagerModule } from '@nestjs/cache-manager';
import { Redis } from 'ioredis';
import { of } from 'rxjs';
import { Cacheable, CacheModule } from '@cachekit/cache';
import { userBody } from './user-record.mjs';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY_PREFIX = `bench:hic:${randomBytes(4).toString('hex')}:`;
const TEN_MINUTES_MS = 10 * 60_000;
const BODY_USERS = Number(process.env.BENCH_BODY_USERS || 1);

/** The same user (or page) for every variant, loaded anew per call. */
const loadBody = (id) => userBody(Number(id), BODY_USERS);

/** Does nothing: the floor of any cache built as a Nest interceptor. */
class PassThroughInterceptor {
  intercept(_context, next) {
    return next.handle();
  }
}
Injectable()(PassThroughInterceptor);

/**
 * Answers one body built at start-up, marked `X-Cache: HIT`, without calling the handler: what any
 * cache built as a Nest interceptor pays for a hit at least, before it looks anything up.
 */
class ConstantHitInterceptor {
  body = loadBody('1');

  intercept(context) {
    const response = context.switchToHttp().getResponse();
    if (typeof response.setHeader === 'function') response.setHeader('X-Cache', 'HIT');
    else response.header('X-Cache', 'HIT');
    return of(this.body);
  }
}
Injectable()(ConstantHitInterceptor);

/** `@Controller('users')` with `@Get(':id') @...decorators findOne(@Param('id') id)`. */
function usersController(...decorators) {
  class UsersController {
    findOne(id) {
      return loadBody(id);
    }
  }
  const prototype = UsersController.prototype;
  Param('id')(prototype, 'findOne', 0);
  const descriptor = Object.getOwnPropertyDescriptor(prototype, 'findOne');
  // Method decorators apply bottom-up: the last written first.
  for (const decorate of [Get(':id'), ...decorators].reverse()) decorate(prototype, 'findOne', descriptor);
  Controller('users')(UsersController);
  return UsersController;
}

const MODULES = {
  bare: () => ({ controllers: [usersController()] }),
  'pass-through': () => ({ controllers: [usersController(UseInterceptors(PassThroughInterceptor))] }),
  'constant-hit': () => ({ controllers: [usersController(UseInterceptors(ConstantHitInterceptor))] }),
  cachekit: () => ({
    imports: [CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: KEY_PREFIX, bus: false, l1: { maxTtl: TEN_MINUTES_MS } })],
    controllers: [usersController(Cacheable({ ttl: '10m' }))],
  }),
  'cache-manager': () => ({
    imports: [CacheManagerModule.register({ ttl: TEN_MINUTES_MS })],
    controllers: [usersController(UseInterceptors(CacheManagerInterceptor))],
  }),
};

const [adapter, variant, port] = process.argv.slice(2);
if (!Number.isInteger(BODY_USERS) || BODY_USERS < 1) {
  console.error(`BENCH_BODY_USERS must be a positive integer, got ${JSON.stringify(process.env.BENCH_BODY_USERS)}`);
  process.exit(2);
}
if (!['express', 'fastify'].includes(adapter) || !Object.hasOwn(MODULES, variant) || !/^\d+$/.test(port ?? '')) {
  console.error(`usage: http-instructions-case.mjs <express|fastify> <${Object.keys(MODULES).join('|')}> <port>`);
  process.exit(2);
}
class HttpInstructionsModule {}
Module(MODULES[variant]())(HttpInstructionsModule);
const httpAdapter = adapter === 'express' ? new ExpressAdapter() : new (await import('@nestjs/platform-fastify')).FastifyAdapter();
const app = await NestFactory.create(HttpInstructionsModule, httpAdapter, { logger: ['error', 'warn'] });
await app.listen(Number(port), '127.0.0.1');
console.log('listening');
process.once('SIGTERM', async () => {
  await app.close();
  if (variant === 'cachekit') {
    const redis = new Redis(REDIS_URL);
    for await (const found of redis.scanStream({ match: `${KEY_PREFIX}*`, count: 1000 })) if (found.length) await redis.unlink(...found);
    await redis.quit();
  }
  process.exit(0);
});
