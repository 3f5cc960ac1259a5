/**
 * The options of `@Cacheable`, `@CachePut` and `@CacheEvict`, in a file of their own: the
 * decorators (decorators/) set them, the interceptor and the provider-method explorer read them.
 */
import type { CacheEntryOptions } from './cache.policy.js';

export interface CacheableOptions<T = any> extends CacheEntryOptions<T> {
  /** Default: `http` for HTTP routes, `rpc` for message handlers, `default` for provider methods. */
  namespace?: string;
  /**
   * The key, fixed or computed. On a provider method the function gets the method's
   * arguments; on an HTTP route, the request; on a message handler, the message data. Build
   * keys from input with `keyPart()`. Default: the class and method with the arguments
   * (provider); the HTTP method, handler, path params and query (HTTP); the message pattern
   * and the data (RPC). A function that returns `undefined` skips the cache for that call (for
   * instance when the input is invalid and the handler will refuse it).
   */
  key?: string | ((...args: any[]) => string | undefined);
  /**
   * HTTP only. A request with credentials (a credential header such as `Authorization`, a
   * cookie or `X-Api-Key`, a `request.user` set by a guard, a client certificate) is never served
   * a shared response: with `'user'` it is cached per principal, otherwise not cached at all
   * (`X-Cache: BYPASS`).
   */
  vary?: 'none' | 'user';
  /**
   * HTTP only. Request headers this route's responses vary by (content negotiation:
   * `accept-language`, ...): their values are part of the key. A response whose `Vary` names a
   * header that is not listed here (or in the module's `http.varyHeaders`) is not stored.
   */
  varyHeaders?: readonly string[];
  /** HTTP only. Default `['GET', 'HEAD']`. */
  methods?: readonly string[];
}

export interface CachePutOptions<T = any> extends CacheEntryOptions<T> {
  namespace?: string;
  /** The key to write, computed like `@CacheEvict` keys: from the method's arguments, or from the request. */
  key: string | ((...args: any[]) => string | undefined);
  /** The committed value's version (e.g. the row's version column): an older one never overwrites a newer one. */
  version: (result: T) => number;
}

export interface CacheEvictOptions {
  namespace?: string;
  /**
   * Keys to delete, fixed or computed: on a provider method the function gets the method's
   * arguments; on an HTTP route, the request and the handler's result; on a message handler,
   * the message data and the handler's result.
   */
  keys?: readonly string[] | ((...args: any[]) => readonly string[]);
  /** Tags to invalidate, fixed or computed like `keys`. */
  tags?: readonly string[] | ((...args: any[]) => readonly string[]);
}
