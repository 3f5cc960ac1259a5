import { z } from 'zod';
import { NAMESPACE_PATTERN } from './cache.constants.js';
import { CacheOptionError } from './cache.errors.js';
import { toMilliseconds } from './duration.js';

/** A duration option: milliseconds, or a string such as `'30s'` (what a config service hands out). */
export const durationSchema = z.unknown().transform((value, ctx) => {
  try {
    return toMilliseconds(value, 'a duration');
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** A function option (a key builder, a principal, a version or tags from a value). */
export function functionSchema<F extends (...args: never[]) => unknown>() {
  return z.custom<F>((value) => typeof value === 'function', 'must be a function');
}

/** Tags or keys: a list, or a function of the value (or the call's arguments) that answers one. */
export const stringsOrFunctionSchema = z.union([z.array(z.string()), functionSchema()], 'must be a list of strings or a function');

/** A namespace name (module `namespaces`, decorators' `namespace`). */
export const namespaceNameSchema = z.string().regex(NAMESPACE_PATTERN, `must match ${NAMESPACE_PATTERN}`);

/** HTTP header names (RFC 9110 tokens), lower-cased. */
export const headerNamesSchema = z.array(
  z
    .string()
    .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be HTTP header names')
    .transform((name) => name.toLowerCase()),
);

/** A positive whole number, also as a digit string (environment variables arrive as text). */
export const countSchema = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^\s*\d+\s*$/, 'must be a whole number')
      .transform(Number),
  ])
  .pipe(z.number().int().positive());

/**
 * Validates options once, at start-up, against `schema`; the error names the option and the bad
 * value, and unknown options (a typo) are refused rather than ignored.
 */
export function parseOptions<Schema extends z.ZodType>(schema: Schema, options: unknown, owner: string): z.output<Schema> {
  const parsed = schema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? `${issue.path.join('.')}.` : '';
    const names = issue.keys.map((key) => `"${where}${key}"`).join(', ');
    throw new CacheOptionError(`${owner}: unknown option ${names}; check its spelling against the documented options`);
  }
  const path = issue.path.join('.') || '(options)';
  const got = issue.path.reduce<unknown>((node, part) => (node as Record<PropertyKey, unknown>)?.[part as PropertyKey], options);
  throw new CacheOptionError(`${owner} option "${path}" is invalid: ${issue.message} (got ${describe(got)})`);
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return JSON.stringify(value) ?? String(value);
}
