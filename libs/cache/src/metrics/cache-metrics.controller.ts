import { Controller, Get, Header, Inject } from '@nestjs/common';
import { CacheService } from '../cache.service.js';

/**
 * `GET /metrics` in Prometheus text format: the cache's registry (`metrics.registry`, or the
 * module's own). Add it to any module that sees `CacheService`: `controllers: [CacheMetricsController]`.
 */
@Controller('metrics')
export class CacheMetricsController {
  constructor(@Inject(CacheService) private readonly cache: CacheService) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  async scrape(): Promise<string> {
    return (await this.cache.metrics()).body;
  }
}
