import { Controller, Get } from '@nestjs/common';
import { HealthCheck, type HealthCheckResult, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { CacheHealthIndicator, CdcHealthIndicator } from '@cachekit/cache/health';

/**
 * Liveness says the process runs; readiness says it can serve: PostgreSQL must answer (503 when
 * not). Redis and the CDC listener only degrade the service, so they never fail readiness; when
 * one is impaired the overall `status` reads `degraded` (still 200) and its detail says why.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly cache: CacheHealthIndicator,
    private readonly cdc: CdcHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    const result = await this.health.check([
      () => this.database.pingCheck('database').withTimeout(1_000),
      () => this.cache.isHealthy('cache'),
      () => this.cdc.isHealthy('cdc'),
    ]);
    const degraded = Object.values(result.details).some((detail) => (detail as { degraded?: unknown }).degraded === true);
    return degraded && result.status === 'ok' ? { ...result, status: 'degraded' } : result;
  }
}
