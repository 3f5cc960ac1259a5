/** Every code a `CacheError` carries: stable across releases, for code to branch on. */
export type CacheErrorCode =
  | 'CACHE_INVALID_OPTION'
  | 'CACHE_INVALID_KEY'
  | 'CACHE_INVALID_PATTERN'
  | 'CACHE_INVALID_ARGUMENT'
  | 'CACHE_LOADER_TIMEOUT'
  | 'CACHE_NOT_CONFIGURED'
  | 'CACHE_REDIS_UNAVAILABLE'
  | 'CACHE_QUEUE_UNAVAILABLE'
  | 'CACHE_CDC_UNAVAILABLE';

/**
 * What the library throws (guards and interceptors answer with Nest's HTTP exceptions instead):
 * `code` is stable, the message is for people. Branch on `code`, or on the subclass.
 */
export class CacheError extends Error {
  override readonly name: string = 'CacheError';

  constructor(
    readonly code: CacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A module, namespace or decorator option that cannot be used; thrown at start-up where it can be. */
export class CacheOptionError extends CacheError {
  override readonly name = 'CacheOptionError';

  constructor(message: string, options?: { cause?: unknown }) {
    super('CACHE_INVALID_OPTION', message, options);
  }
}

/** A call's input that cannot be used: a key, a pattern, a structure's member, score, date or range. */
export class CacheInputError extends CacheError {
  override readonly name = 'CacheInputError';

  constructor(code: 'CACHE_INVALID_KEY' | 'CACHE_INVALID_PATTERN' | 'CACHE_INVALID_ARGUMENT', message: string) {
    super(code, message);
  }
}

/** A loader ran past its hard timeout and no stale value could be served. */
export class CacheTimeoutError extends CacheError {
  override readonly name = 'CacheTimeoutError';

  constructor(message: string) {
    super('CACHE_LOADER_TIMEOUT', message);
  }
}

/** A feature was called without the module that provides it (e.g. `writeBehind()` without `WriteBehindModule`). */
export class CacheNotConfiguredError extends CacheError {
  override readonly name = 'CacheNotConfiguredError';

  constructor(message: string) {
    super('CACHE_NOT_CONFIGURED', message);
  }
}

/**
 * Redis (a Redis structure has no other source to answer from), the write-behind queue, or (for
 * `PgNotifyListener.caughtUp()`) the CDC listener's connection did not answer; `cause` holds the client's error. Cached reads and writes never throw it: they answer
 * from L1 or the loader instead.
 */
export class CacheUnavailableError extends CacheError {
  override readonly name = 'CacheUnavailableError';

  constructor(
    code: 'CACHE_REDIS_UNAVAILABLE' | 'CACHE_QUEUE_UNAVAILABLE' | 'CACHE_CDC_UNAVAILABLE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
