import { UseInterceptors } from '@nestjs/common';
import { CacheInterceptor } from '../interceptors/cache.interceptor.js';

/**
 * `UseInterceptors(CacheInterceptor)`. Applied by each cache decorator; however many end up on
 * one handler (and whatever is bound globally or on the class), the interceptor acts once per request.
 */
export function UseCacheInterceptor(): MethodDecorator & ClassDecorator {
  return UseInterceptors(CacheInterceptor);
}
