import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHE_PUT_METADATA } from '../cache.constants.js';
import type { CachePutOptions } from '../cache-decorator.options.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export type { CachePutOptions } from '../cache-decorator.options.js';

/**
 * Write-through: after the method has committed and returned the new value, the cache gets that
 * value (see `CacheNamespace.writeThrough`). A method that fails writes nothing.
 */
export const CachePut = <T = any>(options: CachePutOptions<T>): MethodDecorator =>
  applyDecorators(SetMetadata(CACHE_PUT_METADATA, options), UseCacheInterceptor());
