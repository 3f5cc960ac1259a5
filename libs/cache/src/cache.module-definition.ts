import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { CacheModuleOptions } from './cache.options.js';

export const {
  ConfigurableModuleClass: ConfigurableCacheModule,
  MODULE_OPTIONS_TOKEN: CACHE_MODULE_OPTIONS,
  OPTIONS_TYPE: CACHE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CACHE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CacheModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** `CacheModule.forRootAsync({ imports, inject, useFactory, isGlobal })`. */
export type CacheModuleAsyncOptions = typeof CACHE_ASYNC_OPTIONS_TYPE;
