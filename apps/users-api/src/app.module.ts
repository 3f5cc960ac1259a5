import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { CACHE_ADMIN_TOKEN, CacheMetricsController, CacheModule } from '@cachekit/cache';
import { CacheCdcModule } from '@cachekit/cache/cdc';
import { WriteBehindModule } from '@cachekit/cache/write-behind';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { USERS_CDC_CHANNEL, usersDatabase } from '@cachekit/users-domain';
import { APP_CONFIG, type AppConfig } from './config/app.config.js';
import { USERS_NAMESPACE } from './users/users.cache-keys.js';
import { usersCdcMap, usersCdcResync } from './users/users.cdc.js';
import { CacheAdminModule } from './cache-admin/cache-admin.module.js';
import { DatabaseUnavailableFilter } from './common/database-unavailable.filter.js';
import { HealthModule } from './health/health.module.js';
import { LeaderboardsModule } from './leaderboards/leaderboards.module.js';
import { UsersModule } from './users/users.module.js';
import { VisitorsModule } from './visitors/visitors.module.js';

@Module({})
export class AppModule {
  /** The whole app for one configuration: main.ts passes the environment's, tests their own. */
  static register(config: AppConfig): DynamicModule {
    // One registry per app instance (tests run several in one process): process metrics and the cache's.
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics });
    return {
      module: AppModule,
      global: true,
      imports: [
        usersDatabase(config.databaseUrl, { runMigrations: true, statementSlackMs: config.usersReadDelayMs }),
        CacheModule.forRoot({
          isGlobal: true,
          redis: config.cacheRedis,
          keyPrefix: config.cacheKeyPrefix,
          defaultTtl: config.cacheDefaultTtlMs,
          l1: { maxItems: config.cacheL1MaxItems, maxBytes: config.cacheL1MaxBytes },
          metrics: { registry: metrics },
          namespaces: {
            // Stampede protection for the hot read: the Redis lock on misses, XFetch early refresh,
            // and a minute of grace (stale-while-revalidate, fail-safe when PostgreSQL fails).
            [USERS_NAMESPACE]: { ttl: config.usersCacheTtlMs, grace: '1m', xfetch: { beta: 1 }, lock: { ttl: '10s', wait: '5s' } },
          },
        }),
        WriteBehindModule.forRoot({ isGlobal: true, redis: { url: config.queueRedisUrl } }),
        CacheCdcModule.forRoot({
          connectionString: config.databaseUrl,
          channel: USERS_CDC_CHANNEL,
          map: usersCdcMap,
          resync: usersCdcResync,
          // Rows may have changed while no instance listened (a deploy, the worker writing meanwhile).
          resyncOnStart: true,
        }),
        UsersModule,
        LeaderboardsModule,
        VisitorsModule,
        HealthModule,
        CacheAdminModule,
      ],
      controllers: [CacheMetricsController],
      providers: [
        { provide: APP_FILTER, useClass: DatabaseUnavailableFilter },
        { provide: APP_CONFIG, useValue: config },
        { provide: CACHE_ADMIN_TOKEN, useValue: config.cacheAdminToken },
      ],
      exports: [APP_CONFIG, CACHE_ADMIN_TOKEN],
    };
  }
}
