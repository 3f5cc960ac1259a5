import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHE_EVICT_METADATA } from '../cache.constants.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export interface CacheEvictOptions {
  namespace?: string;
  /**
   * Keys to delete, fixed or computed: on a provider method the function gets the method's
   * arguments; on an HTTP route, the request and the handler's result; on a message handler,
   * the message data and the handler's result.
   */
  keys?: readonly string[] | ((...args: any[]) => readonly string[]);
  /** Tags to invalidate, fixed or computed like `keys`. */
  tags?: readonly string[] | ((...args: any[]) => readonly string[]);
}

/** After the method succeeds, evicts the named keys and tags. A failed method evicts nothing. */
export const CacheEvict = (options: CacheEvictOptions): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(CACHE_EVICT_METADATA, options), UseCacheInterceptor());
