import { Module } from '@nestjs/common';
import { VisitorsController } from './visitors.controller.js';

/** Unique visitors per page and UTC day on HyperLogLogs in the cache Redis; needs a global `CacheModule`. */
@Module({
  controllers: [VisitorsController],
})
export class VisitorsModule {}
