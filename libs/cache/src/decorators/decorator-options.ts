import { z } from 'zod';
import { CacheOptionError } from '../cache.errors.js';
import { entryOptionFields } from '../cache.policy.js';
import type { CacheNamespace } from '../cache.service.js';
import { functionSchema, headerNamesSchema, namespaceNameSchema, parseOptions, stringsOrFunctionSchema } from '../option-schemas.js';

const aFunction = functionSchema();
const namespace = namespaceNameSchema.optional();
const stringsOrFunction = stringsOrFunctionSchema.optional();

/** Each decorator's options: the entry options (the same schema calls are checked with) and the decorator's own. */
const SCHEMAS = {
  Cacheable: z.strictObject({
    ...entryOptionFields,
    namespace,
    key: z.union([z.string(), aFunction], 'must be a string or a function').optional(),
    vary: z.enum(['none', 'user']).optional(),
    methods: z.array(z.string().regex(/^[A-Za-z]+$/, 'must be HTTP method names')).optional(),
    varyHeaders: headerNamesSchema.optional(),
  }),
  CachePut: z.strictObject({
    ...entryOptionFields,
    namespace,
    key: z.union([z.string(), aFunction], 'is required: a string or a function'),
    version: aFunction,
  }),
  CacheEvict: z.strictObject({ namespace, keys: stringsOrFunction, tags: stringsOrFunction }),
};

/**
 * Checks one decorator's options at start-up, the way the first call would (unknown names, bad
 * durations, bad combinations with the namespace's defaults), so that a bad route option stops
 * the app naming the method and the option instead of warning on every request.
 */
export function validateDecoratorOptions(decorator: keyof typeof SCHEMAS, options: object, where: string, cache: CacheNamespace): void {
  const owner = `@${decorator} on ${where}`;
  const parsed = parseOptions(SCHEMAS[decorator], options, owner);
  if (decorator === 'CacheEvict') return;
  try {
    cache.namespace(parsed.namespace ?? cache.name).checkOptions(options);
  } catch (error) {
    throw new CacheOptionError(`${owner}: ${(error as Error).message}`, { cause: error });
  }
}
