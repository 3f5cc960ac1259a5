import { escapeGlob } from './key-part.js';

/**
 * Every Redis key the library writes, from one prefix. An entry id is `namespace:key`;
 * the `~` kinds cannot collide with entries because a namespace never starts with `~`.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  entry(id: string): string {
    return this.prefix + id;
  }

  /** the lease a load holds while it runs; only its holder may fill the entry */
  lock(id: string): string {
    return `${this.prefix}~lock:${id}`;
  }

  /** the highest version written through for an entry; outlives the entry, so an older write never lands */
  version(id: string): string {
    return `${this.prefix}~ver:${id}`;
  }

  /** a sorted set of the tag's entries, scored by when each expires (`~tagz`: not the older plain sets) */
  tag(tagId: string): string {
    return `${this.prefix}~tagz:${tagId}`;
  }

  /** when the tag was last invalidated (Redis time, ms): loads that started before it must not land */
  tagStamp(tagId: string): string {
    return `${this.prefix}~tagts:${tagId}`;
  }

  /** a Redis structure (leaderboard, hash, unique counter) of one namespace */
  structure(kind: string, id: string): string {
    return `${this.prefix}~${kind}:${id}`;
  }

  /** objects stored as Redis hashes (`cache.hash()`) of one namespace */
  hashPrefix(namespace: string): string {
    return `${this.prefix}~hash:${namespace}:`;
  }

  /** where deletes of hash objects leave tombstones against fills still running */
  hashTombstonePrefix(namespace: string): string {
    return `${this.prefix}~hashgone:${namespace}:`;
  }

  /** the L1 invalidation bus */
  busChannel(): string {
    return `${this.prefix}~bus`;
  }

  entryGlob(idGlob: string): string {
    return escapeGlob(this.prefix) + idGlob;
  }

  lockGlob(idGlob: string): string {
    return `${escapeGlob(`${this.prefix}~lock:`)}${idGlob}`;
  }
}
