import { Body, Controller, Get, Header, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { CacheAdminGuard, CacheService, type CacheStats } from '@cachekit/cache';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { type InvalidateInput, invalidateSchema } from './cache-admin.schemas.js';

@Controller('cache')
export class CacheAdminController {
  constructor(@Inject(CacheService) private readonly cache: CacheService) {}

  /** Hit ratios per namespace and layer, L1 size, and the cache Redis INFO figures. */
  @Get('stats')
  @Header('Cache-Control', 'no-store')
  stats(): Promise<CacheStats> {
    return this.cache.stats();
  }

  /** Admin: evicts exact keys and tags of one namespace, in both levels and on every instance. */
  @Post('invalidate')
  @HttpCode(200)
  @UseGuards(CacheAdminGuard)
  async invalidate(@Body(new ZodValidationPipe(invalidateSchema)) body: InvalidateInput): Promise<{ namespace: string; deleted: number }> {
    const deleted = await this.cache.namespace(body.namespace).invalidate({ keys: body.keys, tags: body.tags }, 'api');
    return { namespace: body.namespace, deleted };
  }
}
