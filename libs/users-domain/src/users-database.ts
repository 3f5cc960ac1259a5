import type { DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { USERS_DOMAIN_ENTITIES, USERS_DOMAIN_MIGRATIONS } from './schema.js';

/**
 * The users database for one app. Connects and statements are bounded, so a database that stops
 * answering (a partition, a hung server) fails a request (a 503) or a job (retried with backoff)
 * within seconds instead of hanging it. `statementSlackMs` is added to both statement bounds (the
 * API's simulated read delay); the app that owns the schema runs the migrations.
 */
export function usersDatabase(url: string, options: { runMigrations: boolean; statementSlackMs?: number }): DynamicModule {
  const slack = options.statementSlackMs ?? 0;
  return TypeOrmModule.forRoot({
    type: 'postgres',
    url,
    entities: USERS_DOMAIN_ENTITIES,
    migrations: options.runMigrations ? USERS_DOMAIN_MIGRATIONS : [],
    migrationsRun: options.runMigrations,
    synchronize: false,
    connectTimeoutMS: 3_000,
    extra: {
      // Server side: a statement running longer is cancelled.
      statement_timeout: 5_000 + slack,
      // Client side: no answer at all, as through a partition, however the server fares.
      query_timeout: 6_000 + slack,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    },
  });
}
