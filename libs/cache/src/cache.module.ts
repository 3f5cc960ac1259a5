import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CACHE_CONFIG } from './cache.constants.js';
import { CACHE_MODULE_OPTIONS, ConfigurableCacheModule } from './cache.module-definition.js';
import { resolveCacheConfig } from './cache.options.js';
import { CacheRuntime } from './cache.runtime.js';
import { CacheService } from './cache.service.js';
import { CachedMethodsExplorer } from './decorators/cached-methods.explorer.js';
import { CacheInterceptor } from './interceptors/cache.interceptor.js';

/**
 * `CacheModule.forRoot({ redis: { url } })` or `forRootAsync({ imports, inject, useFactory })`;
 * add `isGlobal: true` to reach `CacheService` and `@Cacheable` from every module.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    { provide: CACHE_CONFIG, useFactory: resolveCacheConfig, inject: [CACHE_MODULE_OPTIONS] },
    CacheRuntime,
    CacheService,
    CacheInterceptor,
    CachedMethodsExplorer,
  ],
  // CACHE_CONFIG and CacheRuntime are for the interceptor and the optional parts of this package (/cdc, /write-behind, /health), not part of the API.
  exports: [CACHE_CONFIG, CacheRuntime, CacheService, CacheInterceptor],
})
export class CacheModule extends ConfigurableCacheModule {}
