import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CACHE_ADMIN_TOKEN, CacheModule, WRITE_BEHIND_QUEUE } from '@cachekit/cache';
import { USERS_DOMAIN_ENTITIES } from '@cachekit/users-domain';
import { bullConnection, WORKER_CONFIG, type WorkerConfig } from './config/worker.config.js';
import { WorkerHealthController } from './health/worker-health.controller.js';
import { DeadLettersController } from './write-behind/dead-letters.controller.js';
import { WriteBehindProcessor } from './write-behind/write-behind.processor.js';

@Module({})
export class WorkerModule {
  /** The worker for one configuration. The schema is users-api's: it runs the migrations. */
  static register(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      global: true,
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: config.databaseUrl, entities: USERS_DOMAIN_ENTITIES, synchronize: false }),
        // No L1 here: the worker only evicts, and the bus tells the API instances to drop their L1 copies.
        CacheModule.forRoot({
          isGlobal: true,
          redis: { url: config.redisUrl },
          keyPrefix: config.cacheKeyPrefix,
          l1: false,
          writeBehind: { redis: { url: config.queueRedisUrl } },
        }),
        BullModule.forRoot({ connection: bullConnection(config.queueRedisUrl) }),
        BullModule.registerQueue({ name: WRITE_BEHIND_QUEUE }),
        TerminusModule,
      ],
      controllers: [WorkerHealthController, DeadLettersController],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: CACHE_ADMIN_TOKEN, useValue: config.cacheAdminToken },
        WriteBehindProcessor,
      ],
    };
  }
}
