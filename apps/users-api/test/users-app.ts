import { Test } from '@nestjs/testing';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { createTestDatabase, dropPrefix, REDIS_URL, uniquePrefix } from '../../../test/support/services.js';
import { AppModule } from '../src/app.module.js';
import { configureHttp } from '../src/common/http-setup.js';
import { type AppConfig, loadConfig } from '../src/config/app.config.js';

/** users-api as main.ts builds it, on its own database and key prefix. */
export async function startUsersApi(label: string, overrides: Partial<AppConfig> = {}) {
  const database = await createTestDatabase(label);
  const config: AppConfig = {
    ...loadConfig({}),
    databaseUrl: database.url,
    redisUrl: REDIS_URL,
    cacheKeyPrefix: uniquePrefix(label),
    ...overrides,
  };
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register(config)] }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ bodyParser: false, logger: ['error'] });
  configureHttp(app);
  await app.init();
  const redis = new Redis(REDIS_URL);
  return {
    app,
    config,
    redis,
    http: () => request(app.getHttpServer()),
    async stop() {
      await app.close();
      await dropPrefix(redis, config.cacheKeyPrefix);
      await redis.quit();
      await database.drop();
    },
  };
}
