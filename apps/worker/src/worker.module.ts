import { BullModule, Processor } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { CACHE_ADMIN_TOKEN, CacheMetricsController, CacheModule } from '@cachekit/cache';
import { WriteBehindModule, writeBehindQueueAddress, WriteBehindSweeper } from '@cachekit/cache/write-behind';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { usersDatabase } from '@cachekit/users-domain';
import { bullConnection, WORKER_CONFIG, type WorkerConfig } from './config/worker.config.js';
import { WorkerHealthController } from './health/worker-health.controller.js';
import { DeadLettersController } from './write-behind/dead-letters.controller.js';
import { WRITE_BEHIND_WORKER_OPTIONS, WriteBehindProcessor } from './write-behind/write-behind.processor.js';

@Module({})
export class WorkerModule {
  /** The worker for one configuration. The schema is users-api's: it runs the migrations. */
  static register(config: WorkerConfig): DynamicModule {
    // The queue the API instances of this deployment write to: named after the same key prefix
    // (CACHE_KEY_PREFIX), so a deployment sharing the queue Redis never takes these jobs.
    const queue = writeBehindQueueAddress(config.cacheKeyPrefix);
    Processor(queue.name, { ...WRITE_BEHIND_WORKER_OPTIONS, prefix: queue.prefix })(WriteBehindProcessor);
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics });
    return {
      module: WorkerModule,
      global: true,
      imports: [
        usersDatabase(config.databaseUrl, { runMigrations: false }),
        // No L1 here: the worker only evicts, and the bus tells the API instances to drop their L1 copies.
        CacheModule.forRoot({
          isGlobal: true,
          redis: config.cacheRedis,
          keyPrefix: config.cacheKeyPrefix,
          l1: false,
          metrics: { registry: metrics },
        }),
        WriteBehindModule.forRoot({ isGlobal: true, redis: { url: config.queueRedisUrl } }),
        BullModule.forRoot({ connection: bullConnection(config.queueRedisUrl), prefix: queue.prefix }),
        BullModule.registerQueue({ name: queue.name, prefix: queue.prefix }),
        TerminusModule,
      ],
      controllers: [WorkerHealthController, DeadLettersController, CacheMetricsController],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: CACHE_ADMIN_TOKEN, useValue: config.cacheAdminToken },
        WriteBehindProcessor,
        // Queues pending writes that never got their job, and moves this deployment's jobs out of the shared queue used by 0.1.
        WriteBehindSweeper,
      ],
    };
  }
}
