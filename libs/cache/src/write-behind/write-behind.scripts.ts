import { RedisScript } from '../scripts/redis-script.js';

/** The write-behind scripts, run on the queue Redis (`scripts/write-behind-*.lua`, each with its KEYS and ARGV). */
export const WRITE_BEHIND_SCRIPTS = {
  accept: new RedisScript('write-behind-accept-3'),
  settle: new RedisScript('write-behind-settle-2'),
  due: new RedisScript('write-behind-due-1'),
} as const;
