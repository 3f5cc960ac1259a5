import { CacheInputError } from '../cache.errors.js';

/**
 * Encodes user input for use inside a cache key: after it, the part holds no Redis glob
 * character (`* ? [ ] \`) and no `:` separator, so it can neither widen a pattern nor
 * pose as another key's prefix.
 */
export function keyPart(value: string | number | boolean | bigint): string {
  return encodeURIComponent(String(value)).replace(/[*!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Escapes every Redis glob character so that `text` matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** A Redis glob pattern whose only wildcards are those its author wrote literally. */
export class KeyPattern {
  private constructor(readonly glob: string) {}

  /** @internal: use the `glob` template tag. */
  static fromTrusted(glob: string): KeyPattern {
    return new KeyPattern(glob);
  }

  /**
   * A matcher with Redis `stringmatchlen` semantics (for L1), in time linear in the pattern times
   * the text: a pattern with many `*` (it may come over the bus) never backtracks exponentially.
   */
  matcher(prefix = ''): (text: string) => boolean {
    const tokens = [...[...prefix].map((ch): GlobToken => ({ kind: 'char', ch })), ...parseGlob(this.glob)];
    return (text) => matchTokens(tokens, text);
  }
}

type GlobToken =
  { kind: 'char'; ch: string } | { kind: 'any' } | { kind: 'star' } | { kind: 'set'; negate: boolean; ranges: Array<[string, string]> };

function parseGlob(text: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '*') {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' }); // `**` is `*`
    } else if (ch === '?') tokens.push({ kind: 'any' });
    else if (ch === '\\' && i + 1 < text.length) tokens.push({ kind: 'char', ch: text[++i] });
    else if (ch === '[') {
      const end = text.indexOf(']', i + 1);
      if (end < 0) throw new CacheInputError('CACHE_INVALID_PATTERN', `unclosed '[' in pattern ${text}`);
      let body = text.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      const ranges: Array<[string, string]> = [];
      for (let j = 0; j < body.length; j++) {
        // Redis and RegExp agree on `[abc]`, `[^abc]` and `[a-z]`; a backslash inside stays literal.
        if (j + 2 < body.length && body[j + 1] === '-') {
          const [from, to] = body[j] <= body[j + 2] ? [body[j], body[j + 2]] : [body[j + 2], body[j]];
          ranges.push([from, to]);
          j += 2;
        } else ranges.push([body[j], body[j]]);
      }
      tokens.push({ kind: 'set', negate, ranges });
      i = end;
    } else tokens.push({ kind: 'char', ch });
  }
  return tokens;
}

function matchOne(token: GlobToken, ch: string): boolean {
  switch (token.kind) {
    case 'char':
      return token.ch === ch;
    case 'any':
      return true;
    case 'set':
      return token.ranges.some(([from, to]) => ch >= from && ch <= to) !== token.negate;
    default:
      return false;
  }
}

/** Greedy matching that only ever returns to the last `*`: O(pattern × text), never exponential. */
function matchTokens(tokens: readonly GlobToken[], text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let starText = 0;
  while (t < text.length) {
    const token = tokens[p];
    if (token !== undefined && token.kind !== 'star' && matchOne(token, text[t])) {
      p++;
      t++;
    } else if (token?.kind === 'star') {
      star = p++;
      starText = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++starText;
    } else return false;
  }
  while (tokens[p]?.kind === 'star') p++;
  return p === tokens.length;
}

/**
 * Template tag for invalidation patterns: literal text keeps its wildcards, every
 * interpolated value is escaped. `glob\`user:${name}:*\`` never lets `name` act as a wildcard.
 */
export function glob(literals: TemplateStringsArray, ...values: unknown[]): KeyPattern {
  let out = literals[0];
  values.forEach((value, i) => {
    out += escapeGlob(String(value)) + literals[i + 1];
  });
  return KeyPattern.fromTrusted(out);
}
