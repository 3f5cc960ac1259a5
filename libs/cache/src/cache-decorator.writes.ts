import type { CacheEvictOptions, CachePutOptions } from './cache-decorator.options.js';
import type { CacheNamespace } from './cache.service.js';

/** Carries out a `@CacheEvict`: `args` are the method's arguments, or `[request, result]` over HTTP. */
export async function evictFor(cache: CacheNamespace, options: CacheEvictOptions, args: unknown[]): Promise<void> {
  const ns = cache.namespace(options.namespace ?? cache.name);
  const keys = typeof options.keys === 'function' ? options.keys(...args) : options.keys;
  const tags = typeof options.tags === 'function' ? options.tags(...args) : options.tags;
  if (keys?.length) await ns.delete(...keys);
  if (tags?.length) await ns.invalidateTags(...tags);
}

/** Carries out a `@CachePut` with the method's committed `result`; `args` as for `evictFor`. */
export async function putFor(cache: CacheNamespace, options: CachePutOptions, args: unknown[], result: unknown): Promise<void> {
  const key = typeof options.key === 'function' ? options.key(...args) : options.key;
  if (key === undefined) return;
  await cache.namespace(options.namespace ?? cache.name).writeThrough(key, async () => result, options);
}
