import { escapeGlob } from './key-part.js';

/**
 * Every Redis key the library writes, from one prefix. An entry id is `namespace:key`;
 * the `~` kinds cannot collide with entries because a namespace never starts with `~`.
 *
 * Cluster layout: the id (or the tag, or the structure) is the key's hash tag, `{...}`, so an
 * entry, its lock and its version floor share one hash slot, and so do a tag's index and its
 * stamp; a script only ever touches the keys of one slot. The prefix holds no brace, and a
 * namespace is never empty, so the hash tag is never empty (an id holding `}` cuts the tag at the
 * same place in each of its keys).
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  entry(id: string): string {
    return `${this.prefix}{${id}}`;
  }

  /** The id of an entry key (a tag index holds entry keys). */
  idOfEntry(key: string): string {
    return key.slice(this.prefix.length + 1, -1);
  }

  /** the lock a load holds while it runs; only its holder may fill the entry */
  lock(id: string): string {
    return `${this.prefix}~lock:{${id}}`;
  }

  /** the highest version written through for an entry; outlives the entry, so an older write never lands */
  version(id: string): string {
    return `${this.prefix}~ver:{${id}}`;
  }

  /** a sorted set of the tag's entries, scored by when each expires (`~tagz`: not the older plain sets) */
  tag(tagId: string): string {
    return `${this.prefix}~tagz:{${tagId}}`;
  }

  /** when the tag was last invalidated (Redis time, ms): loads that started before it must not land */
  tagStamp(tagId: string): string {
    return `${this.prefix}~tagts:{${tagId}}`;
  }

  /** a Redis structure (leaderboard, unique counter) of one namespace: commands across its keys stay in one slot */
  structure(kind: string, id: string): string {
    return `${this.prefix}~${kind}:{${id}}`;
  }

  /** objects stored as Redis hashes (`cache.hash()`) of one namespace; `HashCache` adds `{id}` */
  hashPrefix(namespace: string): string {
    return `${this.prefix}~hash:${namespace}:`;
  }

  /** where deletes of hash objects leave tombstones against fills still running; `HashCache` adds `{id}` */
  hashTombstonePrefix(namespace: string): string {
    return `${this.prefix}~hashgone:${namespace}:`;
  }

  /** the L1 invalidation bus */
  busChannel(): string {
    return `${this.prefix}~bus`;
  }

  entryGlob(idGlob: string): string {
    return `${escapeGlob(this.prefix)}{${idGlob}}`;
  }

  lockGlob(idGlob: string): string {
    return `${escapeGlob(`${this.prefix}~lock:`)}{${idGlob}}`;
  }

  hashGlob(namespace: string, idGlob: string): string {
    return `${escapeGlob(this.hashPrefix(namespace))}{${idGlob}}`;
  }
}

/** The key of object `id` under `prefix` (`HashCache`): `{id}` is the hash tag its tombstone shares. */
export function hashObjectKey(prefix: string, id: string): string {
  return `${prefix}{${id}}`;
}
