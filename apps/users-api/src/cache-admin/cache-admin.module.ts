import { Module } from '@nestjs/common';
import { CacheAdminController } from './cache-admin.controller.js';
import { CacheStatsService } from './cache-stats.service.js';

/**
 * `GET /cache/stats` and the admin `POST /cache/invalidate` (off, 404, unless CACHE_ADMIN_TOKEN is set).
 * Needs a global `CacheModule` and `APP_CONFIG` (exported by the global AppModule).
 */
@Module({
  controllers: [CacheAdminController],
  providers: [CacheStatsService],
})
export class CacheAdminModule {}
