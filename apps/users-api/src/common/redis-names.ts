import { z } from 'zod';

/**
 * A name from the URL that becomes part of a Redis key (a board, a page): lower-case letters,
 * digits, `_` and `-` only, so it can neither act as a glob wildcard nor add a `:` level.
 */
export const redisName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit');
