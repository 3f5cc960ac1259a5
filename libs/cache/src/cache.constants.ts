/** The resolved, validated `CacheConfig`. */
export const CACHE_CONFIG = Symbol('cachekit:config');

export const CACHEABLE_METADATA = 'cachekit:cacheable';
export const CACHE_EVICT_METADATA = 'cachekit:evict';
export const CACHE_PUT_METADATA = 'cachekit:put';

/** The namespace of `CacheService` itself; `cache.namespace(name)` gives the others. */
export const DEFAULT_NAMESPACE = 'default';

export const CACHE_STATUS_HEADER = 'X-Cache';

/** Provide the admin bearer token under this (`undefined` or empty: admin routes answer 404). */
export const CACHE_ADMIN_TOKEN = Symbol('cachekit:admin-token');
