import type { ChainableCommander } from 'ioredis';
import { CacheError, CacheInputError, CacheUnavailableError } from '../cache.errors.js';

/** A structure's input that cannot be used. */
export function invalidInput(message: string): CacheInputError {
  return new CacheInputError('CACHE_INVALID_ARGUMENT', message);
}

/** `value` as a positive whole number of milliseconds (a structure's TTL or retention), or an error naming `what`. */
export function positiveMs(value: number | undefined, what: string): number {
  if (!(Number.isSafeInteger(value) && (value as number) > 0)) {
    throw invalidInput(`${what} must be a positive integer of milliseconds; got ${String(value)}`);
  }
  return value as number;
}

export function checkMember(member: unknown, what: string): void {
  if (typeof member !== 'string') throw invalidInput(`${what} must be a string; got ${typeof member}`);
}

/**
 * Runs a structure's Redis command. A structure has nothing else to answer from, so a failure
 * reaches the caller, as a `CacheUnavailableError` with the client's error as its cause.
 */
export async function redisCall<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof CacheError) throw error;
    throw new CacheUnavailableError('CACHE_REDIS_UNAVAILABLE', `Redis did not answer: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Runs a MULTI block and returns each command's reply. ioredis reports a failed command inside the
 * block as an `[error, reply]` pair rather than a rejection; the first one is thrown.
 */
export function execTransaction(multi: ChainableCommander): Promise<unknown[]> {
  return redisCall(async () => {
    const results = await multi.exec();
    // `null` only happens when a WATCHed key changed; these blocks watch nothing.
    if (!results) throw new Error('Redis transaction was aborted');
    return results.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
  });
}
