import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { CacheCdcOptions } from './cache-cdc.options.js';

export const { ConfigurableModuleClass: ConfigurableCacheCdcModule, MODULE_OPTIONS_TOKEN: CACHE_CDC_OPTIONS } =
  new ConfigurableModuleBuilder<CacheCdcOptions>().setClassMethodName('forRoot').build();
