import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CACHE_ADMIN_TOKEN, CacheMetricsController, CacheModule } from '@cachekit/cache';
import { CacheCdcModule } from '@cachekit/cache/cdc';
import { WriteBehindModule } from '@cachekit/cache/write-behind';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { USERS_CDC_CHANNEL, USERS_DOMAIN_ENTITIES, USERS_DOMAIN_MIGRATIONS } from '@cachekit/users-domain';
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
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: config.databaseUrl,
          entities: USERS_DOMAIN_ENTITIES,
          migrations: USERS_DOMAIN_MIGRATIONS,
          migrationsRun: true,
          synchronize: false,
          // A database that stops answering (a partition, a hung server) fails requests with a 503
          // within seconds instead of hanging them: connects and statements are bounded.
          connectTimeoutMS: 3_000,
          extra: {
            // Server side: a statement running longer is cancelled (the read delay, when set, on top).
            statement_timeout: 5_000 + config.usersReadDelayMs,
            // Client side: no answer at all, as through a partition, however the server fares.
            query_timeout: 6_000 + config.usersReadDelayMs,
            keepAlive: true,
            keepAliveInitialDelayMillis: 10_000,
          },
        }),
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
