import type { InvalidationTargets } from '../../cache.service.js';
import type { KeyPattern } from '../../keys/key-part.js';
import type { CdcInvalidation } from './cache-cdc.options.js';

/** What a batch removes from one namespace, each target once. */
class NamespaceTargets {
  /** per key, the highest version any change of the batch produced */
  readonly versions = new Map<string, number>();
  /** keys some change named without a version: they go whatever version they hold */
  readonly keys = new Set<string>();
  readonly tags = new Set<string>();
  readonly hashes = new Set<string>();
  readonly patterns = new Map<string, KeyPattern>();
  readonly hashPatterns = new Map<string, KeyPattern>();

  add(what: InvalidationTargets): void {
    const versions = what.versions ?? {};
    for (const [key, version] of Object.entries(versions)) {
      const known = this.versions.get(key);
      if (known === undefined || version > known) this.versions.set(key, version);
    }
    for (const key of what.keys ?? []) if (!Object.hasOwn(versions, key)) this.keys.add(key);
    for (const tag of what.tags ?? []) this.tags.add(tag);
    for (const hash of what.hashes ?? []) this.hashes.add(hash);
    for (const pattern of what.patterns ?? []) this.patterns.set(pattern.glob, pattern);
    for (const pattern of what.hashPatterns ?? []) this.hashPatterns.set(pattern.glob, pattern);
  }

  /** One `invalidate()` argument, and a second one for keys that are both versioned and not. */
  calls(): InvalidationTargets[] {
    const either = [...this.keys].filter((key) => this.versions.has(key));
    const main: InvalidationTargets = {
      versions: this.versions.size ? Object.fromEntries(this.versions) : undefined,
      keys: [...this.keys].filter((key) => !this.versions.has(key)),
      tags: [...this.tags],
      hashes: [...this.hashes],
      patterns: [...this.patterns.values()],
      hashPatterns: [...this.hashPatterns.values()],
    };
    // `invalidate()` treats a key it has a version for as versioned only: delete these outright too.
    return either.length ? [main, { keys: either }] : [main];
  }
}

/**
 * The invalidations of many CDC notifications, coalesced per namespace: each tag, key, hash and
 * pattern once, each key at its highest version. One statement touching thousands of rows then
 * costs a few `invalidate()` calls, each of which sends its keys to Redis in one command.
 */
export class InvalidationBatch {
  private readonly namespaces = new Map<string, NamespaceTargets>();

  add(invalidation: CdcInvalidation): void {
    const { namespace, ...what } = invalidation;
    let targets = this.namespaces.get(namespace);
    if (!targets) this.namespaces.set(namespace, (targets = new NamespaceTargets()));
    targets.add(what);
  }

  /** `[namespace, what to invalidate]` pairs, in the order the namespaces first appeared. */
  calls(): [string, InvalidationTargets][] {
    return [...this.namespaces].flatMap(([namespace, targets]) =>
      targets.calls().map((what): [string, InvalidationTargets] => [namespace, what]),
    );
  }
}
