import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHE_EVICT_METADATA } from '../cache.constants.js';
import type { CacheEvictOptions } from '../cache-decorator.options.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export type { CacheEvictOptions } from '../cache-decorator.options.js';

/** After the method succeeds, evicts the named keys and tags. A failed method evicts nothing. */
export const CacheEvict = (options: CacheEvictOptions): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(CACHE_EVICT_METADATA, options), UseCacheInterceptor());
