import { DEFAULT_NAMESPACE, NAMESPACE_PATTERN } from '@cachekit/cache';
import { z } from 'zod';

const MAX_ITEMS = 1000;
const cacheName = z.string().min(1).max(1024);

/**
 * `POST /cache/invalidate`: exact keys and tags of one namespace (`default` unless named).
 * Keys are never patterns: `*` in a key is just a character.
 */
export const invalidateSchema = z
  .strictObject({
    namespace: z
      .string()
      .regex(NAMESPACE_PATTERN, 'must be 1 to 64 of A-Z, a-z, 0-9, _, . and -, not starting with . or -')
      .default(DEFAULT_NAMESPACE),
    keys: z.array(cacheName).max(MAX_ITEMS).optional(),
    tags: z.array(cacheName).max(MAX_ITEMS).optional(),
  })
  .refine((body) => (body.keys?.length ?? 0) + (body.tags?.length ?? 0) > 0, { message: 'give at least one key or tag', path: ['keys'] });
export type InvalidateInput = z.output<typeof invalidateSchema>;
