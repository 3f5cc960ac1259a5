// A separate process with its own CacheService (the built libs/cache), driven over IPC by
// cross-process tests: each message is a command, each answer carries what the process saw.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { CacheModule, CacheService } from '@cachekit/cache';

const { REDIS_URL = 'redis://127.0.0.1:6379', CACHE_KEY_PREFIX } = process.env;
const app = await NestFactory.createApplicationContext(CacheModule.forRoot({ redis: { url: REDIS_URL }, keyPrefix: CACHE_KEY_PREFIX }), {
  logger: false,
});
await app.init();
const cache = app.get(CacheService);
let loads = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const loaderOf = (loaderMs) => async () => {
  loads++;
  process.send({ event: 'loader-started', pid: process.pid });
  await sleep(loaderMs);
  return { by: process.pid, at: Date.now() };
};

const commands = {
  // `count` concurrent getOrSet calls on one key.
  async burst({ key, count, loaderMs, options }) {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: count }, async () => {
        const t0 = Date.now();
        const lookup = await cache.getOrSetWithStatus(key, loaderOf(loaderMs), options);
        return { status: lookup.status, ms: Date.now() - t0 };
      }),
    );
    return { loads, results, ms: Date.now() - started };
  },
  // One request every `intervalMs` for `durationMs`; reports each request's status and latency.
  async steady({ key, durationMs, intervalMs, loaderMs, options }) {
    const until = Date.now() + durationMs;
    const pending = [];
    while (Date.now() < until) {
      const t0 = Date.now();
      pending.push(
        cache.getOrSetWithStatus(key, loaderOf(loaderMs), options).then((l) => ({ status: l.status, at: t0, ms: Date.now() - t0 })),
      );
      await sleep(intervalMs);
    }
    return { loads, results: await Promise.all(pending) };
  },
  async loads() {
    return { loads };
  },
};

process.on('message', async (message) => {
  try {
    const answer = await commands[message.cmd](message);
    process.send({ id: message.id, ok: true, ...answer });
  } catch (error) {
    process.send({ id: message.id, ok: false, error: String(error?.stack ?? error) });
  }
});
process.send({ event: 'ready' });
