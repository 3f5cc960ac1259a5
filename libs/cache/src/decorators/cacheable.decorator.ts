import { applyDecorators, SetMetadata } from '@nestjs/common';
import { CACHEABLE_METADATA } from '../cache.constants.js';
import type { CacheableOptions } from '../cache-decorator.options.js';
import { UseCacheInterceptor } from './use-cache-interceptor.js';

export type { CacheableOptions } from '../cache-decorator.options.js';

/**
 * Cache-aside for an HTTP route or a `@MessagePattern` handler (through `CacheInterceptor`), or
 * for an `async` method of any singleton provider (wrapped at start-up). Options are checked at
 * start-up: a bad one stops the app naming the method and the option.
 */
export const Cacheable = <T = any>(options: CacheableOptions<T> = {}): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(CACHEABLE_METADATA, options), UseCacheInterceptor());
