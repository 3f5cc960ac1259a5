export type CacheErrorCode =
  'CACHE_INVALID_OPTION' | 'CACHE_INVALID_KEY' | 'CACHE_INVALID_PATTERN' | 'CACHE_LOADER_TIMEOUT' | 'CACHE_NOT_CONFIGURED';

/** The one error type the library throws; `code` is stable, the message is for people. */
export class CacheError extends Error {
  override readonly name = 'CacheError';

  constructor(
    readonly code: CacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
