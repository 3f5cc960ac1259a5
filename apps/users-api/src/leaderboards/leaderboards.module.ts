import { Module } from '@nestjs/common';
import { LeaderboardsController } from './leaderboards.controller.js';

/** Sorted-set leaderboards in the cache Redis; needs a global `CacheModule`. */
@Module({
  controllers: [LeaderboardsController],
})
export class LeaderboardsModule {}
