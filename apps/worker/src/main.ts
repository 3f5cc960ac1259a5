import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadWorkerConfig } from './config/worker.config.js';
import { WorkerModule } from './worker.module.js';

async function bootstrap(): Promise<void> {
  const config = loadWorkerConfig();
  const app = await NestFactory.create(WorkerModule.register(config));
  // SIGTERM: stop taking jobs, finish the ones in flight, then exit.
  app.enableShutdownHooks();
  await app.listen(config.port);
  new Logger('Worker').log(`write-behind worker up; health and metrics on port ${config.port}`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Worker').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
