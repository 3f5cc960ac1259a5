import { PgNotifyListener } from '@cachekit/cache/cdc';
import { Test } from '@nestjs/testing';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from '../../../test/support/services.js';
import { VISIBLE_MS, within } from '../../../test/support/wait.js';
import { AppModule } from '../src/app.module.js';
import { configureHttp } from '../src/common/http-setup.js';
import { type AppConfig, loadConfig } from '../src/config/app.config.js';

export type UsersApi = Awaited<ReturnType<typeof startInstance>>;

/** One users-api instance as main.ts builds it, with the given configuration. */
export async function startInstance(config: AppConfig) {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register(config)] }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ bodyParser: false, logger: ['error'] });
  configureHttp(app);
  await app.init();
  const listener = app.get(PgNotifyListener);
  /**
   * Until this instance has evicted what every change committed so far calls for (its listener
   * may still be connecting): a late notification can then no longer evict what a test caches next.
   */
  const cdcCaughtUp = async () => {
    await within(VISIBLE_MS, () => listener.up);
    await listener.caughtUp();
  };
  return { app, config, http: () => request(app.getHttpServer()), cdcCaughtUp, close: () => app.close() };
}

/**
 * A database and key prefix of its own (one per spec file), and `instances` users-api
 * instances sharing them, as replicas behind a load balancer would.
 */
export async function startUsersApiCluster(label: string, instances: number, overrides: Partial<AppConfig> = {}) {
  const database = await createTestDatabase(label);
  const config: AppConfig = {
    ...loadConfig({}),
    databaseUrl: database.url,
    redisUrl: REDIS_URL,
    cacheKeyPrefix: uniquePrefix(label),
    ...overrides,
    cacheRedis: overrides.cacheRedis ?? { url: overrides.redisUrl ?? REDIS_URL },
  };
  const started: UsersApi[] = [];
  for (let i = 0; i < instances; i++) started.push(await startInstance(config));
  const redis = new Redis(REDIS_URL);
  return {
    instances: started,
    config,
    redis,
    databaseUrl: database.url,
    async stop() {
      for (const instance of started) await instance.close();
      await dropPrefix(redis, config.cacheKeyPrefix);
      await redis.quit();
      await database.drop();
    },
  };
}

/** One users-api instance on a database and key prefix of its own. */
export async function startUsersApi(label: string, overrides: Partial<AppConfig> = {}) {
  const cluster = await startUsersApiCluster(label, 1, overrides);
  const [instance] = cluster.instances;
  return { ...instance, redis: cluster.redis, stop: () => cluster.stop() };
}
