/**
 * What the HTTP interceptor stores when the body alone would not replay the response: the
 * representation headers the handler set, or a 404 with the handler's body. A plain JSON 200
 * is stored as the body itself, so that `@CachePut`, `writeThrough` and services share entries
 * with `@Cacheable` routes. The marker key keeps a record apart from any application value.
 */
export const RESPONSE_MARK = '$cachekit:response';

export interface ResponseRecord {
  [RESPONSE_MARK]: 1;
  /** status, when it is not 200 (a cached 404) */
  s?: number;
  /** representation headers to replay, lower-case names */
  h?: Record<string, string>;
  /** the body, as the handler's interceptors after the cache would see it */
  b: unknown;
}

export function isResponseRecord(value: unknown): value is ResponseRecord {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[RESPONSE_MARK] === 1;
}

/** A cached "not found": kept for the negative TTL, like `null`. */
export function isNegativeValue(value: unknown): boolean {
  return value === null || value === undefined || (isResponseRecord(value) && value.s === 404);
}

/**
 * A loader's value that must be neither stored nor handed to anyone else waiting for the same
 * key (a response with `Set-Cookie`, `no-store`, a stream...): only the caller that ran it sees it.
 */
export class Uncached<T = unknown> {
  constructor(readonly value: T) {}
}
