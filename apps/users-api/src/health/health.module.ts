import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { CacheHealthIndicator, CdcHealthIndicator } from '@cachekit/cache/health';
import { HealthController } from './health.controller.js';

/** `/health/live` and `/health/ready`; needs a global `CacheModule` and a TypeORM connection. */
@Module({
  imports: [TerminusModule],
  controllers: [HealthController],
  providers: [CacheHealthIndicator, CdcHealthIndicator],
})
export class HealthModule {}
