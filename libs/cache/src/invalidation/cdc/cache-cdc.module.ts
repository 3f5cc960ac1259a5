import { Module } from '@nestjs/common';
import { ConfigurableCacheCdcModule } from './cache-cdc.module-definition.js';
import { PgNotifyListener } from './pg-notify.listener.js';

/**
 * CDC invalidation from PostgreSQL LISTEN/NOTIFY. Needs `CacheModule` registered globally.
 * `CacheCdcModule.forRootAsync({ useFactory: () => ({ connectionString, map, resync }) })`.
 */
@Module({
  providers: [PgNotifyListener],
  exports: [PgNotifyListener],
})
export class CacheCdcModule extends ConfigurableCacheCdcModule {}
