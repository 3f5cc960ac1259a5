import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { WriteBehindModuleOptions } from './write-behind.queue.js';

export const { ConfigurableModuleClass: ConfigurableWriteBehindModule, MODULE_OPTIONS_TOKEN: WRITE_BEHIND_OPTIONS } =
  new ConfigurableModuleBuilder<WriteBehindModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
    .build();
