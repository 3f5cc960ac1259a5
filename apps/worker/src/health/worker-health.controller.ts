import { Controller, Get, Header, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { CacheRuntime } from '@cachekit/cache';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** Liveness, readiness (PostgreSQL and the queue Redis) and Prometheus metrics of the worker. */
@Controller()
export class WorkerHealthController {
  private readonly registry: Registry;

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicator: HealthIndicatorService,
    @Inject(CacheRuntime) private readonly runtime: CacheRuntime,
  ) {
    const own = new Registry();
    collectDefaultMetrics({ register: own });
    this.registry = Registry.merge([own, runtime.metrics.registry]);
  }

  @Get('health/live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** Not ready without PostgreSQL or the queue Redis: the worker can do nothing without them. */
  @Get('health/ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.database.pingCheck('database', { timeout: 1_000 }), () => this.queueRedis()]);
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  private async queueRedis() {
    const check = this.indicator.check('queue');
    const redis = this.runtime.writeBehind?.redis;
    if (!redis) throw new ServiceUnavailableException('write-behind is not configured');
    try {
      await redis.ping();
      return check.up();
    } catch (error) {
      return check.down({ message: (error as Error).message });
    }
  }
}
