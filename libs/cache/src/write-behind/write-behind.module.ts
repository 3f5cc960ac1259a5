import { Module } from '@nestjs/common';
import { ConfigurableWriteBehindModule } from './write-behind.module-definition.js';
import { WriteBehindQueue } from './write-behind.queue.js';
import { WriteBehindRunner } from './write-behind.runner.js';

/**
 * Write-behind through BullMQ on its own Redis: `cache.writeBehind()` in the apps that accept
 * writes, `WriteBehindRunner` in the worker that persists them (and `WriteBehindSweeper` in its
 * providers, which reconciles pending writes that have no job). Needs `CacheModule` registered
 * globally and the `bullmq` package.
 */
@Module({
  providers: [WriteBehindQueue, WriteBehindRunner],
  exports: [WriteBehindQueue, WriteBehindRunner],
})
export class WriteBehindModule extends ConfigurableWriteBehindModule {}
