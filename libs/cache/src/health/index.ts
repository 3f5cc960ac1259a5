/** `@cachekit/cache/health`: terminus health indicators (needs `@nestjs/terminus`). */
export { CacheHealthIndicator } from './cache.health.js';
export type { CacheBusState, CacheComponentState, CacheHealthDetails, CacheHealthOptions } from './cache.health.js';
export { CdcHealthIndicator } from './cdc.health.js';
export type { CdcHealthDetails, CdcListenerState } from './cdc.health.js';
