/** The resolved, validated `CacheConfig`. */
export const CACHE_CONFIG = Symbol('cachekit:config');

export const CACHEABLE_METADATA = 'cachekit:cacheable';
export const CACHE_EVICT_METADATA = 'cachekit:evict';
export const CACHE_PUT_METADATA = 'cachekit:put';

/** The namespace of `CacheService` itself; `cache.namespace(name)` gives the others. */
export const DEFAULT_NAMESPACE = 'default';

export const CACHE_STATUS_HEADER = 'X-Cache';

/** What a namespace name may be: it is part of every key, label and channel of the namespace. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** What `redis: { url }` (and the write-behind queue's `redis`) accepts: a redis:// or rediss:// URL. */
export const REDIS_URL_PATTERN = /^rediss?:\/\//;

/** Provide the admin bearer token under this (`undefined` or empty: admin routes answer 404). */
export const CACHE_ADMIN_TOKEN = Symbol('cachekit:admin-token');
