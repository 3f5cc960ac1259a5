import { Logger, ServiceUnavailableException } from '@nestjs/common';

const logger = new Logger('RedisStructures');

/**
 * Runs a call whose data lives only in Redis (a leaderboard, a visitor count): when Redis
 * fails or is away, the answer is a JSON 503 rather than a 500, as there is nothing to fall back on.
 * RangeError and TypeError are left alone: they mean a caller skipped validation, a bug.
 */
export async function unlessRedisUnavailable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError) throw error;
    logger.warn(`Redis call failed: ${(error as Error).message}`);
    throw new ServiceUnavailableException({ statusCode: 503, error: 'Service Unavailable', message: 'Redis is unavailable' });
  }
}
