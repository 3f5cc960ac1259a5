import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { CacheService, UniqueCounter } from '@cachekit/cache';
import { unlessRedisUnavailable } from '../common/redis-unavailable.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import {
  pageParamsSchema,
  type PageParams,
  recordVisitSchema,
  type RecordVisitInput,
  visitorsQuerySchema,
  type VisitorsQuery,
} from './visitors.schemas.js';

/** How long each day's count of a page stays readable after that day (UTC) ends. */
const VISITORS_RETENTION = '31d';

export interface PageVisitors {
  page: string;
  /** YYYY-MM-DD, UTC */
  date: string;
  /** HyperLogLog estimate: exact for small counts, within about 1 % beyond. */
  unique: number;
}

@Controller('pages/:page')
export class VisitorsController {
  constructor(private readonly cache: CacheService) {}

  /** Counts the visitor once per UTC day, however often they come back. */
  @Post('visits')
  @HttpCode(204)
  async recordVisit(
    @Param(new ZodValidationPipe(pageParamsSchema)) { page }: PageParams,
    @Body(new ZodValidationPipe(recordVisitSchema)) { visitorId }: RecordVisitInput,
  ): Promise<void> {
    await unlessRedisUnavailable(() => this.visitors(page).add(visitorId));
  }

  /** Distinct visitors of one UTC day, today by default. */
  @Get('visitors')
  async uniqueVisitors(
    @Param(new ZodValidationPipe(pageParamsSchema)) { page }: PageParams,
    @Query(new ZodValidationPipe(visitorsQuerySchema)) query: VisitorsQuery,
  ): Promise<PageVisitors> {
    const date = query.date ?? new Date().toISOString().slice(0, 10);
    const unique = await unlessRedisUnavailable(() => this.visitors(page).count(new Date(`${date}T00:00:00.000Z`)));
    return { page, date, unique };
  }

  private visitors(page: string): UniqueCounter {
    return this.cache.namespace('visitors').uniqueCounter(page, { retention: VISITORS_RETENTION });
  }
}
