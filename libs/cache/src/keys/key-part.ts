import { CacheError } from '../cache.errors.js';

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

  /** Compiles the pattern to a RegExp with Redis `stringmatchlen` semantics (for L1). */
  toRegExp(prefix = ''): RegExp {
    let source = '';
    const text = this.glob;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch === '*') source += '[\\s\\S]*';
      else if (ch === '?') source += '[\\s\\S]';
      else if (ch === '\\' && i + 1 < text.length) source += escapeRegExp(text[++i]);
      else if (ch === '[') {
        const end = text.indexOf(']', i + 1);
        if (end < 0) throw new CacheError('CACHE_INVALID_PATTERN', `unclosed '[' in pattern ${text}`);
        // Redis and RegExp agree on `[abc]`, `[^abc]` and `[a-z]`; a backslash inside stays literal.
        source += `[${text.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      } else source += escapeRegExp(ch);
    }
    return new RegExp(`^${escapeRegExp(prefix)}${source}$`);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
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
