import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHEABLE_METADATA } from '../cache.constants.js';
import type { CacheEntryOptions } from '../cache.policy.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export interface CacheableOptions extends CacheEntryOptions {
  /** Default: `http` for controller methods, `default` for service methods. */
  namespace?: string;
  /**
   * The key, fixed or computed. On a service method the function gets the method's
   * arguments; on a controller method, the request. Build keys from input with `keyPart()`.
   * Default: the class and method with the arguments (service), or the route template,
   * path params and sorted query (HTTP). A function that returns `undefined` skips the cache
   * for that call (for instance when the input is invalid and the handler will refuse it).
   */
  key?: string | ((...args: any[]) => string | undefined);
  /**
   * HTTP only. A request with an `Authorization` header or a cookie is never served a shared
   * response: with `'user'` it is cached per principal, otherwise it is not cached at all.
   */
  vary?: 'none' | 'user';
  /** HTTP only. Default `['GET', 'HEAD']`. */
  methods?: readonly string[];
}

/**
 * Cache-aside for a controller method (through `CacheInterceptor`) or for a method of any
 * provider (wrapped at start-up; the method then always returns a Promise).
 */
export const Cacheable = (options: CacheableOptions = {}): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(CACHEABLE_METADATA, options), UseCacheInterceptor());
