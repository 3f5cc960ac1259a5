import sjson from 'secure-json-parse';
import { type CacheEnvelope, type EntryMeta, isEnvelope, metaOf } from './envelope.js';

const DATE_TAG = '$date';
const PARSE_OPTIONS = { protoAction: 'remove', constructorAction: 'remove' } as const;

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // JSON.stringify has already called Date#toJSON on `value`; the holder still has the Date.
  const original = this[key];
  // Epoch ms rather than ISO text: `new Date(number)` is several times cheaper to revive.
  return original instanceof Date ? { [DATE_TAG]: original.getTime() } : value;
}

/**
 * Turns every `{"$date": epochMs}` in an object or array back into a Date, in place; faster than a
 * JSON.parse reviver, and it only descends into objects.
 */
function reviveDates(node: object): unknown {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (typeof item === 'object' && item !== null) node[i] = reviveDates(item);
    }
    return node;
  }
  const record = node as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === DATE_TAG && typeof record[DATE_TAG] === 'number') return new Date(record[DATE_TAG]);
  for (const key of keys) {
    const item = record[key];
    if (typeof item === 'object' && item !== null) record[key] = reviveDates(item);
  }
  return record;
}

/** JSON that keeps `Date` values (as `{"$date": epochMs}`). */
export function serializeValue(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, replacer);
}

/**
 * Parses what `serializeValue` wrote. `__proto__` and `constructor.prototype` keys are
 * dropped, so cached JSON can never reach an object's prototype.
 */
export function deserializeValue(text: string): unknown {
  const parsed = parseSafely(text);
  // Only walk the value when a Date can be in there.
  return typeof parsed === 'object' && parsed !== null && text.includes(DATE_TAG) ? reviveDates(parsed) : parsed;
}

/** JSON.parse without `__proto__` and `constructor.prototype` keys (see `deserializeValue`). */
function parseSafely(text: string): unknown {
  // secure-json-parse scans with escape-aware regexes; text without any escape or either key cannot hold them.
  const suspicious = text.includes('\\u') || text.includes('__proto__') || text.includes('constructor');
  return suspicious ? sjson.parse(text, undefined, PARSE_OPTIONS) : JSON.parse(text);
}

/** The L2 wire format: the envelope's metadata with the already serialized value spliced in. */
export function encodeEnvelope(meta: EntryMeta, serializedValue: string): string {
  const head = JSON.stringify(metaOf(meta));
  return `${head.slice(0, -1)},"v":${serializedValue}}`;
}

/**
 * The serialized value inside an envelope `encodeEnvelope` wrote (it puts `v` last), without
 * parsing it again; `undefined` for any other layout.
 */
export function serializedValueOf(envelopeText: string): string | undefined {
  // `,"v":` cannot occur earlier: the metadata before it holds numbers and JSON-escaped strings.
  const at = envelopeText.indexOf(',"v":');
  return at > 0 && envelopeText.endsWith('}') ? envelopeText.slice(at + 5, -1) : undefined;
}

/** `undefined` for anything that is not an envelope this library wrote (corrupt or foreign). */
export function decodeEnvelope(text: string): CacheEnvelope | undefined {
  try {
    const parsed = parseSafely(text);
    if (!isEnvelope(parsed)) return undefined;
    // The metadata holds no Dates: only the value is walked (it throws on foreign text nested
    // deeper than the stack, which reads as unreadable like any other).
    const { v } = parsed;
    if (typeof v === 'object' && v !== null && text.includes(DATE_TAG)) parsed.v = reviveDates(v);
    return parsed;
  } catch {
    return undefined;
  }
}

/**
 * Freezes `value` and everything it holds, in place. A frozen Date can still be changed through its
 * setters (its time is an internal slot, not a property): the one mutation freezing cannot stop.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}

const DATE_IN_TEXT = /\{"\$date":(-?\d+)\}/g;

/**
 * The JSON an HTTP response would carry for a value stored as `text` (what `JSON.stringify` gives
 * for the deserialized value: Dates as ISO strings), without parsing it. A tagged Date cannot occur
 * inside a JSON string: its quotes would be escaped there.
 */
export function wireJsonOf(text: string): string {
  if (!text.includes(DATE_TAG)) return text;
  return text.replace(DATE_IN_TEXT, (_tag, ms: string) => `"${new Date(Number(ms)).toISOString()}"`);
}
