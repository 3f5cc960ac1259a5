/**
 * One server of the HTTP benchmark (bench/http.bench.ts), in a process of its own so that the load
 * generator and the server do not share an event loop:
 * `node --import ./bench/register.mjs bench/http-server.ts <express|fastify> <bare|pass-through|cachekit|cache-manager> <port>`.
 * One Nest app, one route `GET /users/:id`, on 127.0.0.1; with `BENCH_BODY_USERS=N` (N > 1) the route answers
 * a page of N users instead of one. `cachekit` needs Redis at REDIS_URL and
 * keeps its keys under BENCH_KEY_PREFIX (the bench deletes them). Started by the bench, it reports
 * over IPC: `{ type: 'listening' }` once it serves, and when asked with `{ type: 'stats' }`, how many
 * times the handler ran and the CPU time this process used so far.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import {
  applyDecorators,
  type CallHandler,
  Controller,
  type ExecutionContext,
  Get,
  type INestApplication,
  Injectable,
  Module,
  type ModuleMetadata,
  type NestInterceptor,
  Param,
  type Type,
  UseInterceptors,
} from '@nestjs/common';
import { type AbstractHttpAdapter, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { CacheInterceptor as CacheManagerInterceptor, CacheModule as CacheManagerModule } from '@nestjs/cache-manager';
import { Cacheable, CacheModule, CacheService } from '@cachekit/cache';
import { Redis } from 'ioredis';
import { dropPrefix, REDIS_URL } from '../test/support/services.js';
import { positiveFromEnv } from './harness.js';
import { userBody } from './user-record.mjs';

const ADAPTERS = ['express', 'fastify'] as const;
const VARIANTS = ['bare', 'pass-through', 'cachekit', 'cache-manager'] as const;
export type AdapterName = (typeof ADAPTERS)[number];
export type Variant = (typeof VARIANTS)[number];

/** What the server tells the bench over IPC. */
export type ServerMessage =
  | { type: 'listening'; port: number }
  /** `hits`: cachekit's hits by layer since start-up (cachekit only) */
  | { type: 'stats'; calls: number; cpuMicros: number; hits?: { l1: number; l2: number } };

const TEN_MINUTES_MS = 10 * 60_000;
let handlerCalls = 0;
/** how many users the route answers: 1 is the user object itself, more a page (an array) of them */
const BODY_USERS = positiveFromEnv('BENCH_BODY_USERS', 1);

/** The same user (or page) for every variant, loaded anew per call. */
function loadBody(id: string) {
  handlerCalls++;
  return userBody(Number(id), BODY_USERS);
}

/** Does nothing: what Nest's interceptor machinery alone costs a request, the floor of any cache built as an interceptor. */
@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle();
  }
}

/** The one route of every variant: the same handler under the variant's decorators. */
function usersController(...decorators: MethodDecorator[]): Type {
  @Controller('users')
  class UsersController {
    @Get(':id')
    @applyDecorators(...decorators)
    findOne(@Param('id') id: string) {
      return loadBody(id);
    }
  }
  return UsersController;
}

function appModule(variant: Variant, keyPrefix: string): Type {
  const metadata: Record<Variant, ModuleMetadata> = {
    bare: { controllers: [usersController()] },
    'pass-through': { controllers: [usersController(UseInterceptors(PassThroughInterceptor))] },
    cachekit: {
      imports: [CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix })],
      controllers: [usersController(Cacheable({ ttl: '10m' }))],
    },
    // In memory, as @nestjs/cache-manager's docs set it up for its interceptor; ttl in milliseconds.
    'cache-manager': {
      imports: [CacheManagerModule.register({ ttl: TEN_MINUTES_MS })],
      controllers: [usersController(UseInterceptors(CacheManagerInterceptor))],
    },
  };
  @Module(metadata[variant])
  class HttpBenchModule {}
  return HttpBenchModule;
}

async function httpAdapter(adapter: AdapterName): Promise<AbstractHttpAdapter> {
  if (adapter === 'express') return new ExpressAdapter();
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  return new FastifyAdapter();
}

function parseArgs(argv: readonly string[]): { adapter: AdapterName; variant: Variant; port: number } {
  const [adapter, variant, port] = argv;
  const usage = `usage: http-server.ts <${ADAPTERS.join('|')}> <${VARIANTS.join('|')}> <port>`;
  if (!ADAPTERS.includes(adapter as AdapterName)) throw new Error(`${usage}; got adapter ${JSON.stringify(adapter)}`);
  if (!VARIANTS.includes(variant as Variant)) throw new Error(`${usage}; got variant ${JSON.stringify(variant)}`);
  if (!/^\d+$/.test(port ?? '') || Number(port) > 65_535) throw new Error(`${usage}; got port ${JSON.stringify(port)}`);
  return { adapter: adapter as AdapterName, variant: variant as Variant, port: Number(port) };
}

async function dropKeys(keyPrefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
  await redis.connect();
  await dropPrefix(redis, keyPrefix);
  await redis.quit();
}

async function main(): Promise<void> {
  const { adapter, variant, port } = parseArgs(process.argv.slice(2));
  const keyPrefix = process.env.BENCH_KEY_PREFIX ?? `bench:http:${randomBytes(4).toString('hex')}:`;
  const app: INestApplication = await NestFactory.create(appModule(variant, keyPrefix), await httpAdapter(adapter), {
    logger: ['error', 'warn'],
  });
  await app.listen(port, '127.0.0.1');
  const send = process.send?.bind(process);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      // Started by hand, it cleans up after itself; under the bench, the bench does.
      if (!send && variant === 'cachekit') await dropKeys(keyPrefix);
      process.exit(0);
    })());
  process.once('SIGTERM', () => void close());
  process.once('SIGINT', () => void close());
  if (!send) {
    console.log(`${adapter} ${variant}: http://127.0.0.1:${port}/users/1 (keys under ${keyPrefix})`);
    return;
  }
  const cache = variant === 'cachekit' ? app.get(CacheService) : undefined;
  process.on('message', (message: { type?: string }) => {
    if (message.type !== 'stats') return;
    const { user, system } = process.cpuUsage();
    const stats = { type: 'stats', calls: handlerCalls, cpuMicros: user + system } as const;
    if (!cache) send(stats satisfies ServerMessage);
    else void cache.stats().then(({ total }) => send({ ...stats, hits: total.hits } satisfies ServerMessage));
  });
  // The bench is gone (even SIGKILLed): do not outlive it.
  process.once('disconnect', () => void close());
  send({ type: 'listening', port } satisfies ServerMessage);
}

await main();
