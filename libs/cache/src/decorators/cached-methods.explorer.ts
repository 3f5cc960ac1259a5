import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { CacheableOptions, CacheEvictOptions, CachePutOptions } from '../cache-decorator.options.js';
import { evictFor, putFor } from '../cache-decorator.writes.js';
import { CACHE_EVICT_METADATA, CACHE_PUT_METADATA, CACHEABLE_METADATA } from '../cache.constants.js';
import { CacheOptionError } from '../cache.errors.js';
import { CacheService } from '../cache.service.js';
import { keyPart } from '../keys/key-part.js';
import { validateDecoratorOptions } from './decorator-options.js';

const WRAPPED = Symbol('cachekit:wrapped');
type Method = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };
type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];

interface Decorated {
  cacheable?: CacheableOptions;
  evict?: CacheEvictOptions;
  put?: CachePutOptions;
}

/**
 * At start-up: checks the options of every `@Cacheable`, `@CachePut` and `@CacheEvict` (on
 * controllers and providers), so that a bad one stops the app naming the method and the option;
 * and makes them work on provider methods, where no interceptor runs, by wrapping each decorated
 * method of each singleton provider on its instance.
 */
@Injectable()
export class CachedMethodsExplorer implements OnModuleInit {
  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(CacheService) private readonly cache: CacheService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      this.forEachDecorated(wrapper, (where, decorated) => this.validate(where, decorated));
    }
    for (const wrapper of this.discovery.getProviders()) {
      this.forEachDecorated(wrapper, (where, decorated, name) => {
        this.validate(where, decorated);
        this.wrap(wrapper, where, name, decorated);
      });
    }
  }

  private forEachDecorated(wrapper: InstanceWrapper, visit: (where: string, decorated: Decorated, name: string) => void): void {
    const type = wrapper.metatype;
    if (typeof type !== 'function' || !type.prototype || wrapper.inject) return; // factories and values have no methods of ours
    const onClass: Decorated = {
      cacheable: this.reflector.get(CACHEABLE_METADATA, type),
      evict: this.reflector.get(CACHE_EVICT_METADATA, type),
      put: this.reflector.get(CACHE_PUT_METADATA, type),
    };
    if (onClass.cacheable || onClass.evict || onClass.put) this.validate(type.name, onClass);
    for (const name of this.scanner.getAllMethodNames(type.prototype)) {
      const method = (type.prototype as Record<string, unknown>)[name];
      if (typeof method !== 'function') continue;
      const decorated: Decorated = {
        cacheable: this.reflector.get(CACHEABLE_METADATA, method),
        evict: this.reflector.get(CACHE_EVICT_METADATA, method),
        put: this.reflector.get(CACHE_PUT_METADATA, method),
      };
      if (decorated.cacheable || decorated.evict || decorated.put) visit(`${type.name}.${name}`, decorated, name);
    }
  }

  private validate(where: string, { cacheable, evict, put }: Decorated): void {
    if (cacheable) validateDecoratorOptions('Cacheable', cacheable, where, this.cache);
    if (evict) validateDecoratorOptions('CacheEvict', evict, where, this.cache);
    if (put) validateDecoratorOptions('CachePut', put, where, this.cache);
  }

  private wrap(wrapper: InstanceWrapper, where: string, name: string, decorated: Decorated): void {
    if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
      throw new CacheOptionError(
        `${where} has a cache decorator, but ${wrapper.name as string} is request-scoped or transient (or depends on such a provider): ` +
          'cache decorators work on singleton providers only. Make it a singleton, or inject CacheService and call getOrSet / delete.',
      );
    }
    const instance = wrapper.instance as Record<string, Method> | undefined;
    const method = instance?.[name];
    if (!instance || typeof method !== 'function' || method[WRAPPED]) return;
    const prototype = Object.getPrototypeOf(instance) as object;
    if (decorated.cacheable) {
      assertAsync(prototype, name, method, where);
      instance[name] = this.cached(instance, where, method, decorated.cacheable);
    } else {
      instance[name] = this.writing(instance, method, decorated.put, decorated.evict);
    }
  }

  private cached(instance: object, where: string, method: Method, options: CacheableOptions): Method {
    const namespace = this.cache.namespace(options.namespace ?? this.cache.name);
    const wrapped: Method = (...args) => {
      const key =
        typeof options.key === 'function'
          ? options.key(...args)
          : typeof options.key === 'string'
            ? options.key
            : [where, ...args.map((arg) => keyPart(typeof arg === 'string' ? arg : (JSON.stringify(arg) ?? 'undefined')))].join(':');
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

/**
 * A cached provider method answers with a Promise: refuse one that is not declared to, so that a
 * caller typed for a plain value never gets a Promise. `async` methods and methods annotated
 * `Promise<...>` pass (TypeScript's `design:returntype` tells); controller handlers need neither.
 */
function assertAsync(prototype: object, name: string, method: Method, where: string): void {
  const returnType: unknown = Reflect.getMetadata('design:returntype', prototype, name);
  if (method.constructor.name === 'AsyncFunction' || returnType === Promise) return;
  throw new CacheOptionError(
    `@Cacheable on ${where}: a cached provider method returns a Promise, so it must be declared \`async\` ` +
      `or with a \`Promise<...>\` return type (it is ${describeType(returnType)})`,
  );
}

function describeType(type: unknown): string {
  if (typeof type === 'function') return `typed ${type.name}`;
  return 'neither async nor typed';
}
