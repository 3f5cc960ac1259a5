import type { LoggerService } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { CacheService, type InvalidationTargets } from '@cachekit/cache';
import { PgNotifyListener } from '@cachekit/cache/cdc';
import { Redis } from 'ioredis';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { AppModule } from '../apps/users-api/src/app.module.js';
import { configureHttp } from '../apps/users-api/src/common/http-setup.js';
import { loadConfig } from '../apps/users-api/src/config/app.config.js';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from './support/services.js';
import { VISIBLE_MS, within } from './support/wait.js';

const ROWS = 20_000;

/** Nest's logger for one app, counting what it writes at WARN and above. */
class CountingLogger implements LoggerService {
  readonly problems: string[] = [];
  log(): void {}
  debug(): void {}
  verbose(): void {}
  warn(message: unknown, context?: unknown): void {
    this.problems.push(`WARN [${String(context)}] ${String(message)}`);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.problems.push(`ERROR [${String(rest.at(-1))}] ${String(message)}`);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.problems.push(`FATAL [${String(rest.at(-1))}] ${String(message)}`);
  }
}

describe('issue 11 item 3: CDC back-pressure (one UPDATE of 20,000 rows, users-api, real PostgreSQL and Redis)', () => {
  const logger = new CountingLogger();
  const redis = new Redis(REDIS_URL);
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: NestExpressApplication;
  let sql: pg.Client;
  let prefix: string;

  const http = () => request(app.getHttpServer());
  const metric = async (name: string) => {
    const line = (await app.get(CacheService).metrics()).body.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1] ?? NaN);
  };

  beforeAll(async () => {
    database = await createTestDatabase('cdc_flood');
    prefix = uniquePrefix('cdc_flood');
    const config = {
      ...loadConfig({}),
      databaseUrl: database.url,
      redisUrl: REDIS_URL,
      cacheRedis: { url: REDIS_URL },
      cacheKeyPrefix: prefix,
    };
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.register(config)] }).compile();
    app = moduleRef.createNestApplication<NestExpressApplication>({ bodyParser: false, logger });
    configureHttp(app);
    await app.init();
    await within(5000, () => app.get(PgNotifyListener).up);
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    // Seeded without triggers (a replica session), so that the flood under test is the UPDATE's alone.
    await sql.query(`SET session_replication_role = replica`);
    await sql.query(`INSERT INTO users (email, name) SELECT 'u' || g || '@example.com', 'user ' || g FROM generate_series(1, ${ROWS}) g`);
    await sql.query(`SET session_replication_role = origin`);
  });

  afterAll(async () => {
    await sql?.end();
    await app?.close();
    await database?.drop();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it('issue 11 item 3: every cached copy is fresh within a few seconds, and fewer than 10 WARN/ERROR lines are logged', async () => {
    const [first, last] = [1, ROWS];
    for (const path of [`/users/${first}`, `/users/${last}`, '/users?limit=5']) {
      await http().get(path).expect(200);
      expect((await http().get(path).expect(200)).headers['x-cache']).toBe('HIT');
    }
    const notifications = await metric('cdc_notifications_total');
    logger.problems.length = 0;
    // How many CDC invalidations run, and how many at once (the listener uses this same handle).
    const users = app.get(CacheService).namespace('users');
    const invalidate = users.invalidate.bind(users);
    const cdc = { calls: 0, running: 0, mostAtOnce: 0, rowsApplied: 0 };
    users.invalidate = async (what: InvalidationTargets, source?: Parameters<typeof invalidate>[1]) => {
      if (source !== 'cdc') return invalidate(what, source);
      cdc.calls++;
      cdc.mostAtOnce = Math.max(cdc.mostAtOnce, ++cdc.running);
      try {
        const deleted = await invalidate(what, source);
        cdc.rowsApplied += Object.keys(what.versions ?? {}).length;
        return deleted;
      } finally {
        cdc.running--;
      }
    };

    const started = Date.now();
    await sql.query(`UPDATE users SET name = name || ' v2'`);
    const committedMs = Date.now() - started;
    const fresh = async () => {
      const [a, b, page] = await Promise.all([`/users/${first}`, `/users/${last}`, '/users?limit=5'].map((path) => http().get(path)));
      return a.body.name === `user ${first} v2` && b.body.name === `user ${last} v2` && page.body[0]?.name === `user ${first} v2`;
    };
    // Polled every 25 ms: the poll must not take the CPU from the listener it measures.
    await within(VISIBLE_MS, async () => (await sleep(25), fresh()));
    const freshMs = Date.now() - started;
    await within(10_000, async () => (await metric('cdc_notifications_total')) >= notifications + ROWS);
    const allReceivedMs = Date.now() - started;
    // Every row's version reached Redis (each row once, the map gives each a version).
    await within(10_000, async () => (await sleep(25), cdc.rowsApplied >= ROWS));
    const allAppliedMs = Date.now() - started;

    console.log(
      `issue 11 item 3: UPDATE of ${ROWS} rows committed in ${committedMs} ms; every cached copy fresh ${freshMs} ms after the statement ` +
        `started; all ${ROWS} notifications received after ${allReceivedMs} ms and applied after ${allAppliedMs} ms; ${cdc.calls} CDC invalidate() calls, at most ` +
        `${cdc.mostAtOnce} at once; WARN/ERROR lines: ${logger.problems.length}` +
        (logger.problems.length ? `\n${logger.problems.slice(0, 5).join('\n')}` : ''),
    );
    expect(cdc.mostAtOnce).toBe(1);
    expect(cdc.calls).toBeLessThan(100);
    expect(logger.problems.length).toBeLessThan(10);
    // A unit check (seconds, not milliseconds), not a speed bound: how fast is bench/cdc-visibility.bench.ts.
    expect(await metric('cdc_lag_seconds')).toBeLessThan(VISIBLE_MS / 1000);
  });
});
