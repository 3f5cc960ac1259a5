/** `@cachekit/cache/cdc`: invalidation from PostgreSQL LISTEN/NOTIFY (needs the `pg` package). */
export { CacheCdcModule } from './cache-cdc.module.js';
export { CACHE_CDC_OPTIONS } from './cache-cdc.module-definition.js';
export { PgNotifyListener } from './pg-notify.listener.js';
export type { CacheCdcOptions, CdcInvalidation, CdcNotification } from './cache-cdc.options.js';
