import { UseInterceptors } from '@nestjs/common';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { CacheInterceptor } from '../interceptors/cache.interceptor.js';

/**
 * `UseInterceptors(CacheInterceptor)`, once: `@CachePut` and `@CacheEvict` on one handler must
 * not run the interceptor (and so the write and the eviction) twice.
 */
export function UseCacheInterceptor(): MethodDecorator & ClassDecorator {
  return (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = descriptor ? descriptor.value : target;
    const present: unknown[] = Reflect.getMetadata(INTERCEPTORS_METADATA, holder) ?? [];
    if (present.includes(CacheInterceptor)) return;
    if (descriptor) UseInterceptors(CacheInterceptor)(target, key as string | symbol, descriptor);
    else UseInterceptors(CacheInterceptor)(target as Function);
  };
}
