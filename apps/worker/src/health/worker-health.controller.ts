import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { WriteBehindQueue } from '@cachekit/cache/write-behind';

/** Liveness and readiness (PostgreSQL and the queue Redis) of the worker; `/metrics` is the library's controller. */
@Controller()
export class WorkerHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicator: HealthIndicatorService,
    @Inject(WriteBehindQueue) private readonly queue: WriteBehindQueue,
  ) {}

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

  private async queueRedis() {
    const check = this.indicator.check('queue');
    return (await this.queue.ping()) ? check.up() : check.down({ message: 'queue Redis does not answer' });
  }
}
