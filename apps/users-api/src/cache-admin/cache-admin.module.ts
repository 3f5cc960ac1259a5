import { Module } from '@nestjs/common';
import { CacheAdminController } from './cache-admin.controller.js';

/**
 * `GET /cache/stats` and the admin `POST /cache/invalidate` (off, 404, unless CACHE_ADMIN_TOKEN is set).
 * Needs a global `CacheModule`.
 */
@Module({
  controllers: [CacheAdminController],
})
export class CacheAdminModule {}
