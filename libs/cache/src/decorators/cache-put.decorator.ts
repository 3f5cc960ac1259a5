import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHE_PUT_METADATA } from '../cache.constants.js';
import type { CacheEntryOptions } from '../cache.policy.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export interface CachePutOptions<T = any> extends CacheEntryOptions<T> {
  namespace?: string;
  /** The key to write, computed like `@CacheEvict` keys: from the method's arguments, or from the request. */
  key: string | ((...args: any[]) => string | undefined);
  /** The committed value's version (e.g. the row's version column): an older one never overwrites a newer one. */
  version: (result: T) => number;
}

/**
 * Write-through: after the method has committed and returned the new value, the cache gets that
 * value (see `CacheNamespace.writeThrough`). A method that fails writes nothing.
 */
export const CachePut = <T = any>(options: CachePutOptions<T>): MethodDecorator =>
  applyDecorators(SetMetadata(CACHE_PUT_METADATA, options), UseCacheInterceptor());
