import { NAMESPACE_PATTERN } from '../cache.constants.js';
import { CacheOptionError } from '../cache.errors.js';
import { assertKnownOptions, ENTRY_OPTION_NAMES } from '../cache.policy.js';
import type { CacheNamespace } from '../cache.service.js';

const KNOWN: Record<'Cacheable' | 'CacheEvict' | 'CachePut', readonly string[]> = {
  Cacheable: [...ENTRY_OPTION_NAMES, 'namespace', 'key', 'vary', 'methods', 'varyHeaders'],
  CacheEvict: ['namespace', 'keys', 'tags'],
  CachePut: [...ENTRY_OPTION_NAMES, 'namespace', 'key'],
};

/**
 * Checks one decorator's options at start-up, the way the first call would (unknown names, bad
 * durations, bad combinations with the namespace's defaults), so that a bad route option stops
 * the app naming the method and the option instead of warning on every request.
 */
export function validateDecoratorOptions(decorator: keyof typeof KNOWN, options: object, where: string, cache: CacheNamespace): void {
  const owner = `@${decorator} on ${where}`;
  try {
    assertKnownOptions(options, KNOWN[decorator], owner);
    const o = options as Record<string, unknown>;
    if (o.namespace !== undefined && (typeof o.namespace !== 'string' || !NAMESPACE_PATTERN.test(o.namespace))) {
      fail(`namespace must match ${NAMESPACE_PATTERN}; got ${JSON.stringify(o.namespace)}`);
    }
    if (o.key !== undefined && typeof o.key !== 'string' && typeof o.key !== 'function') fail('key must be a string or a function');
    for (const name of ['keys', 'tags'] as const) {
      const value = o[name];
      if (value !== undefined && typeof value !== 'function' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
        fail(`${name} must be a list of strings or a function`);
      }
    }
    if (decorator === 'CachePut' && (typeof o.key === 'undefined' || typeof o.version !== 'function')) fail('key and version are required');
    if (o.vary !== undefined && o.vary !== 'none' && o.vary !== 'user')
      fail(`vary must be 'none' or 'user'; got ${JSON.stringify(o.vary)}`);
    if (
      o.varyHeaders !== undefined &&
      !(Array.isArray(o.varyHeaders) && o.varyHeaders.every((h) => typeof h === 'string' && /^[A-Za-z0-9-]+$/.test(h)))
    ) {
      fail('varyHeaders must be a list of HTTP header names');
    }
    if (o.methods !== undefined && !(Array.isArray(o.methods) && o.methods.every((m) => typeof m === 'string' && /^[A-Za-z]+$/.test(m)))) {
      fail('methods must be a list of HTTP method names');
    }
    if (decorator !== 'CacheEvict') cache.namespace((o.namespace as string | undefined) ?? cache.name).checkOptions(options);
  } catch (error) {
    const message = (error as Error).message;
    throw new CacheOptionError(message.startsWith(owner) ? message : `${owner}: ${message}`, { cause: error });
  }
}

function fail(message: string): never {
  throw new CacheOptionError(message);
}
