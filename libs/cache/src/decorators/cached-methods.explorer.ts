import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { CACHE_EVICT_METADATA, CACHE_PUT_METADATA, CACHEABLE_METADATA } from '../cache.constants.js';
import { CacheService } from '../cache.service.js';
import { keyPart } from '../keys/key-part.js';
import type { CacheEvictOptions } from './cache-evict.decorator.js';
import { evictFor, putFor } from './cache-eviction.js';
import type { CachePutOptions } from './cache-put.decorator.js';
import type { CacheableOptions } from './cacheable.decorator.js';

const WRAPPED = Symbol('cachekit:wrapped');
type Method = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };

/**
 * Makes `@Cacheable`, `@CachePut` and `@CacheEvict` work on provider methods, where no interceptor runs:
 * at start-up each decorated method of each singleton provider is wrapped on its instance.
 */
@Injectable()
export class CachedMethodsExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly cache: CacheService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, Method> | undefined;
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      for (const name of this.scanner.getAllMethodNames(Object.getPrototypeOf(instance))) {
        const method = instance[name];
        if (typeof method !== 'function' || method[WRAPPED]) continue;
        const cacheable = this.reflector.get<CacheableOptions | undefined>(CACHEABLE_METADATA, method);
        const evict = this.reflector.get<CacheEvictOptions | undefined>(CACHE_EVICT_METADATA, method);
        const put = this.reflector.get<CachePutOptions | undefined>(CACHE_PUT_METADATA, method);
        if (cacheable) instance[name] = this.cached(instance, name, method, cacheable);
        else if (evict || put) instance[name] = this.writing(instance, method, put, evict);
      }
    }
  }

  private cached(instance: object, name: string, method: Method, options: CacheableOptions): Method {
    const namespace = this.cache.namespace(options.namespace ?? this.cache.name);
    const prefix = `${instance.constructor.name}.${name}`;
    const wrapped: Method = (...args) => {
      const key =
        typeof options.key === 'function' ? options.key(...args)
        : typeof options.key === 'string' ? options.key
        : [prefix, ...args.map((arg) => keyPart(typeof arg === 'string' ? arg : JSON.stringify(arg) ?? 'undefined'))].join(':');
      if (key === undefined) return Promise.resolve(method.apply(instance, args));
      return namespace.getOrSet(key, () => method.apply(instance, args), options);
    };
    wrapped[WRAPPED] = true;
    return wrapped;
  }

  private writing(instance: object, method: Method, put: CachePutOptions | undefined, evict: CacheEvictOptions | undefined): Method {
    const wrapped: Method = async (...args) => {
      const result = await method.apply(instance, args);
      if (put) await putFor(this.cache, put, args, result);
      if (evict) await evictFor(this.cache, evict, args);
      return result;
    };
    wrapped[WRAPPED] = true;
    return wrapped;
  }
}
