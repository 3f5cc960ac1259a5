import { Body, Controller, Get, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { CacheService, Leaderboard, type RankedMember } from '@cachekit/cache';
import { unlessRedisUnavailable } from '../common/redis-unavailable.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import {
  addScoreSchema,
  type AddScoreInput,
  boardParamsSchema,
  type BoardParams,
  memberParamsSchema,
  type MemberParams,
  topQuerySchema,
  type TopQuery,
} from './leaderboards.schemas.js';

/** Boards are created by their first score; one left without writes this long disappears from Redis. */
const LEADERBOARD_TTL = '30d';

@Controller('leaderboards/:board')
export class LeaderboardsController {
  constructor(private readonly cache: CacheService) {}

  /** Sets the member's score (replacing an earlier one) and answers with its new rank. */
  @Post('scores')
  addScore(
    @Param(new ZodValidationPipe(boardParamsSchema)) { board }: BoardParams,
    @Body(new ZodValidationPipe(addScoreSchema)) { member, score }: AddScoreInput,
  ): Promise<RankedMember> {
    return unlessRedisUnavailable(() => this.leaderboard(board).add(member, score));
  }

  /** Best first; a board nobody has scored on yet is an empty list. */
  @Get('top')
  top(
    @Param(new ZodValidationPipe(boardParamsSchema)) { board }: BoardParams,
    @Query(new ZodValidationPipe(topQuerySchema)) { limit }: TopQuery,
  ): Promise<RankedMember[]> {
    return unlessRedisUnavailable(() => this.leaderboard(board).top(limit));
  }

  @Get('members/:member')
  async member(@Param(new ZodValidationPipe(memberParamsSchema)) { board, member }: MemberParams): Promise<RankedMember> {
    const standing = await unlessRedisUnavailable(() => this.leaderboard(board).rankOf(member));
    if (!standing) throw new NotFoundException(`${JSON.stringify(member)} has no score on board ${board}`);
    return standing;
  }

  private leaderboard(board: string): Leaderboard {
    return this.cache.namespace('leaderboards').leaderboard(board, { ttl: LEADERBOARD_TTL });
  }
}
