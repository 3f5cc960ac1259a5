import { keyPart } from './key-part.js';

/** JSON with object keys sorted, so that equal payloads give equal keys whatever their key order. */
export function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, node: unknown) => {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
      return Object.fromEntries(Object.entries(node).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }) ?? 'undefined'
  );
}

/**
 * `name=value` pairs sorted by name, safe inside a key. A string is written as is (encoded);
 * anything else (a repeated query parameter's array) as `~` and its JSON, which no encoded string
 * starts with: `?a=1&a=2` and `?a=["1","2"]` never share a key.
 */
export function canonicalPairs(record: Record<string, unknown>): string {
  return Object.keys(record)
    .sort()
    .map((name) => {
      const value = record[name];
      return `${keyPart(name)}=${typeof value === 'string' ? keyPart(value) : `~${keyPart(canonical(value))}`}`;
    })
    .join('&');
}
