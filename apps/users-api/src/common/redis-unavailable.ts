import { CacheError } from '@cachekit/cache';
import { Logger, ServiceUnavailableException } from '@nestjs/common';

const logger = new Logger('RedisStructures');

/**
 * Runs a call whose data lives only in Redis (a leaderboard, a visitor count): when Redis
 * fails or is away (`CACHE_REDIS_UNAVAILABLE`), the answer is a JSON 503 rather than a 500, as
 * there is nothing to fall back on. Any other error is left alone: bad input the routes did not
 * refuse is a bug.
 */
export async function unlessRedisUnavailable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof CacheError && error.code === 'CACHE_REDIS_UNAVAILABLE')) throw error;
    logger.warn(`Redis call failed: ${error.message}`);
    throw new ServiceUnavailableException({ statusCode: 503, error: 'Service Unavailable', message: 'Redis is unavailable' });
  }
}
