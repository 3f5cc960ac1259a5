import { BullModule, Processor } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CACHE_ADMIN_TOKEN, CacheMetricsController, CacheModule } from '@cachekit/cache';
import { WRITE_BEHIND_QUEUE, WriteBehindModule } from '@cachekit/cache/write-behind';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { USERS_DOMAIN_ENTITIES } from '@cachekit/users-domain';
import { bullConnection, WORKER_CONFIG, type WorkerConfig } from './config/worker.config.js';
import { WorkerHealthController } from './health/worker-health.controller.js';
import { DeadLettersController } from './write-behind/dead-letters.controller.js';
import { WRITE_BEHIND_WORKER_OPTIONS, WriteBehindProcessor } from './write-behind/write-behind.processor.js';

@Module({})
export class WorkerModule {
  /** The worker for one configuration. The schema is users-api's: it runs the migrations. */
  static register(config: WorkerConfig): DynamicModule {
    // The queue the API instances write to (the same configuration); the processor consumes it.
    const queueName = WRITE_BEHIND_QUEUE;
    Processor(queueName, WRITE_BEHIND_WORKER_OPTIONS)(WriteBehindProcessor);
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics });
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
          metrics: { registry: metrics },
        }),
        WriteBehindModule.forRoot({ isGlobal: true, redis: { url: config.queueRedisUrl }, queueName }),
        BullModule.forRoot({ connection: bullConnection(config.queueRedisUrl) }),
        BullModule.registerQueue({ name: queueName }),
        TerminusModule,
      ],
      controllers: [WorkerHealthController, DeadLettersController, CacheMetricsController],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: CACHE_ADMIN_TOKEN, useValue: config.cacheAdminToken },
        WriteBehindProcessor,
      ],
    };
  }
}
