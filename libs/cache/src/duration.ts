import ms from 'ms';
import { CacheOptionError } from './cache.errors.js';

type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

/** Milliseconds as a number, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'1h'`, `'1d'`. */
export type Duration = number | `${number}${DurationUnit}`;

/**
 * A duration in module options, where values often come from a config service as plain
 * strings: any string is accepted by the type and checked once at start-up.
 */
export type DurationOption = Duration | (string & {});

/** `T` with every duration widened to `DurationOption` (options built from configuration). */
export type Configurable<T> = T extends `${number}${DurationUnit}`
  ? DurationOption
  : T extends (...args: never[]) => unknown
    ? T
    : T extends object
      ? { [K in keyof T]: Configurable<T[K]> }
      : T;

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
    throw new CacheOptionError(
      `${optionName} must be a duration (milliseconds, or a string like '30s', '5m', '1h'); got ${JSON.stringify(value)}`,
    );
  }
  return Math.round(parsed);
}
