import sjson from 'secure-json-parse';
import { type CacheEnvelope, type EntryMeta, isEnvelope, metaOf } from './envelope.js';

const DATE_TAG = '$date';
const PARSE_OPTIONS = { protoAction: 'remove', constructorAction: 'remove' } as const;

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // JSON.stringify has already called Date#toJSON on `value`; the holder still has the Date.
  const original = this[key];
  return original instanceof Date ? { [DATE_TAG]: original.toISOString() } : value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const tagged = (value as Record<string, unknown>)[DATE_TAG];
    if (typeof tagged === 'string' && Object.keys(value).length === 1) {
      const date = new Date(tagged);
      if (!Number.isNaN(date.getTime())) return date;
    }
  }
  return value;
}

/** JSON that keeps `Date` values (as `{"$date": iso}`). */
export function serializeValue(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, replacer);
}

/**
 * Parses what `serializeValue` wrote. `__proto__` and `constructor.prototype` keys are
 * dropped, so cached JSON can never reach an object's prototype.
 */
export function deserializeValue(text: string): unknown {
  // A reviver makes JSON.parse several times slower: only pay for it when a Date is in there.
  return sjson.parse(text, text.includes(DATE_TAG) ? reviver : undefined, PARSE_OPTIONS);
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
    const parsed = deserializeValue(text);
    return isEnvelope(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
