import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureHttp } from './common/http-setup.js';
import { loadConfig } from './config/app.config.js';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), { bodyParser: false });
  configureHttp(app);
  await app.listen(config.port);
  new Logger('UsersApi').log(`listening on port ${config.port}`);
}

bootstrap().catch((error: unknown) => {
  new Logger('UsersApi').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
