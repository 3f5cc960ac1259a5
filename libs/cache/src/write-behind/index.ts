/** `@cachekit/cache/write-behind`: the BullMQ side of write-behind (needs the `bullmq` package). */
export { WriteBehindModule } from './write-behind.module.js';
export { WRITE_BEHIND_OPTIONS } from './write-behind.module-definition.js';
export { WRITE_BEHIND_QUEUE, WriteBehindQueue, writeBehindQueueAddress } from './write-behind.queue.js';
export type { WriteBehindModuleOptions } from './write-behind.queue.js';
export { WriteBehindRunner } from './write-behind.runner.js';
export type { PersistOutcome } from './write-behind.runner.js';
export { WriteBehindSweeper } from './write-behind.sweeper.js';
export type { SweepOutcome } from './write-behind.sweeper.js';
export type { WriteBehindJob, WriteBehindStatus } from './write-behind.port.js';
