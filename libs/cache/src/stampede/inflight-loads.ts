const MAX_TAGS_REMEMBERED = 10_000;

/** One running load, marked when an invalidation that concerns it arrives before it lands. */
export interface InflightLoad {
  readonly id: string;
  readonly startedAt: number;
  invalidated: boolean;
}

/**
 * The loads running in this process, so that an invalidation also stops an older value from
 * landing in L1 (Redis locks and tag stamps do the same for L2, and cover L1 too while Redis
 * answers).
 */
export class InflightLoads {
  private readonly running = new Set<InflightLoad>();
  /** when each tag was last invalidated while loads were running */
  private readonly tagInvalidatedAt = new Map<string, number>();

  begin(id: string): InflightLoad {
    const load: InflightLoad = { id, startedAt: Date.now(), invalidated: false };
    this.running.add(load);
    return load;
  }

  end(load: InflightLoad): void {
    this.running.delete(load);
    if (this.running.size === 0) this.tagInvalidatedAt.clear();
  }

  invalidate(ids: readonly string[]): void {
    if (this.running.size === 0) return;
    const targets = new Set(ids);
    for (const load of this.running) if (targets.has(load.id)) load.invalidated = true;
  }

  /** A load's tags are known only when it ends: remember when these were invalidated. */
  invalidateTags(tagIds: readonly string[]): void {
    if (this.running.size === 0) return;
    // Bounded while some load never ends (a hung loader): forgetting is safe once every running
    // load counts as overtaken.
    if (this.tagInvalidatedAt.size + tagIds.length > MAX_TAGS_REMEMBERED) {
      this.invalidateAll();
      this.tagInvalidatedAt.clear();
      return;
    }
    const now = Date.now();
    for (const tag of tagIds) this.tagInvalidatedAt.set(tag, now);
  }

  /** How many tag invalidations are remembered against running loads. */
  get rememberedTags(): number {
    return this.tagInvalidatedAt.size;
  }

  /** Patterns cannot be matched against loads cheaply: every running load is suspect. */
  invalidateAll(): void {
    for (const load of this.running) load.invalidated = true;
  }

  /** Whether `load`, ending with these tags, was overtaken by an invalidation. */
  isInvalidated(load: InflightLoad, tagIds: readonly string[] = []): boolean {
    if (load.invalidated) return true;
    return tagIds.some((tag) => (this.tagInvalidatedAt.get(tag) ?? -1) >= load.startedAt);
  }
}
