/** `@cachekit/cache`: the module, the service, the decorators. Optional parts: `/health`, `/cdc`, `/write-behind`. */
export { CacheModule } from './cache.module.js';
export type { CacheModuleAsyncOptions } from './cache.module-definition.js';
export type { CacheConfig, CacheModuleOptions, HttpCacheOptions, L1Values, RedisClusterOptions, SentinelOptions } from './cache.options.js';
export {
  CACHE_ADMIN_TOKEN,
  CACHE_CONFIG,
  CACHE_STATUS_HEADER,
  DEFAULT_NAMESPACE,
  NAMESPACE_PATTERN,
  REDIS_URL_PATTERN,
} from './cache.constants.js';
export { CacheService, CacheNamespace } from './cache.service.js';
export type { InvalidationTargets } from './cache.service.js';
export type { CacheEntryOptions, NamespaceDefaults } from './cache.policy.js';
export type { CacheLookup, CacheStatus } from './stampede/load-coordinator.js';
export {
  CacheError,
  CacheInputError,
  CacheNotConfiguredError,
  CacheOptionError,
  CacheTimeoutError,
  CacheUnavailableError,
} from './cache.errors.js';
export type { CacheErrorCode } from './cache.errors.js';
export type { Configurable, Duration, DurationOption } from './duration.js';
export { toMilliseconds } from './duration.js';
export { keyPart, glob, escapeGlob, KeyPattern } from './keys/key-part.js';
export { Cacheable } from './decorators/cacheable.decorator.js';
export type { CacheableOptions, CacheEvictOptions, CachePutOptions } from './cache-decorator.options.js';
export { CacheEvict } from './decorators/cache-evict.decorator.js';
export { CachePut } from './decorators/cache-put.decorator.js';
export { CacheInterceptor } from './interceptors/cache.interceptor.js';
export type { CacheableRequest } from './interceptors/cache.interceptor.js';
export { CacheAdminGuard } from './admin/cache-admin.guard.js';
export { CacheMetricsController } from './metrics/cache-metrics.controller.js';
export type { CacheStats, LookupStats } from './metrics/cache-stats.js';
export type { InvalidationSource } from './metrics/cache.metrics.js';
export { Leaderboard } from './structures/leaderboard.js';
export type { LeaderboardOptions, RankedMember } from './structures/leaderboard.js';
export { HashCache } from './structures/hash-cache.js';
export type { HashCacheIo, HashCacheOptions, HashObject } from './structures/hash-cache.js';
export { UniqueCounter } from './structures/unique-counter.js';
export type { UniqueCounterOptions } from './structures/unique-counter.js';
