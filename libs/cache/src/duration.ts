import ms from 'ms';
import { CacheError } from './cache.errors.js';

type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

/** Milliseconds as a number, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'1h'`, `'1d'`. */
export type Duration = number | `${number}${DurationUnit}`;

/**
 * The one place durations are parsed: everything inside the library is milliseconds.
 * Plain digit strings (as environment variables arrive) are milliseconds too.
 */
export function toMilliseconds(value: unknown, optionName: string): number {
  let parsed: number | undefined;
  if (typeof value === 'number') {
    parsed = value;
  } else if (typeof value === 'string') {
    const text = value.trim();
    parsed = /^\d+(\.\d+)?$/.test(text) ? Number(text) : ms(text as ms.StringValue);
  }
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0) {
    throw new CacheError(
      'CACHE_INVALID_OPTION',
      `${optionName} must be a duration (milliseconds, or a string like '30s', '5m', '1h'); got ${JSON.stringify(value)}`,
    );
  }
  return Math.round(parsed);
}
