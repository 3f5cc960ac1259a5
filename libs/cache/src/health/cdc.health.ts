import { Inject, Injectable, type OnModuleInit, Optional } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PgNotifyListener } from '../invalidation/cdc/pg-notify.listener.js';

export type CdcListenerState = 'up' | 'down' | 'off';

/** The detail `CdcHealthIndicator` reports under its key. */
export type CdcHealthDetails = {
  listener: CdcListenerState;
  /** true while the LISTEN connection is down: changes made meanwhile are evicted by the resync on reconnect */
  degraded: boolean;
  /** what is missing, when degraded */
  message?: string;
};

/**
 * Readiness detail for CDC invalidation. The LISTEN connection reconnects and resyncs on its own,
 * and reads still work without it, so this never reports `down`: a lost listener is `degraded`.
 * The listener is injected when visible to the module that provides this indicator, else looked up
 * in the whole app (as terminus' own database indicators find their connection); without
 * `CacheCdcModule` it reports `listener: 'off'`.
 */
@Injectable()
export class CdcHealthIndicator implements OnModuleInit {
  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Optional() @Inject(PgNotifyListener) private listener?: PgNotifyListener,
  ) {}

  onModuleInit(): void {
    if (this.listener) return;
    try {
      this.listener = this.moduleRef.get(PgNotifyListener, { strict: false });
    } catch {
      this.listener = undefined; // no CacheCdcModule in this app
    }
  }

  isHealthy<const Key extends string = 'cdc'>(key: Key = 'cdc' as Key) {
    const listener: CdcListenerState = this.listener ? (this.listener.up ? 'up' : 'down') : 'off';
    const details: CdcHealthDetails = { listener, degraded: listener === 'down' };
    if (listener === 'down') details.message = 'LISTEN connection down: reconnecting, then resyncing';
    return this.health.check(key).up(details);
  }
}
