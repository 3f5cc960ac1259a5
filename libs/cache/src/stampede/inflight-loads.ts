/** One running load, marked when an invalidation that concerns it arrives before it lands. */
export interface InflightLoad {
  readonly id: string;
  invalidated: boolean;
}

/**
 * The loads running in this process, so that an invalidation also stops an older value from
 * landing in L1 (Redis leases do the same for L2, and cover L1 too while Redis answers).
 */
export class InflightLoads {
  private readonly running = new Set<InflightLoad>();

  begin(id: string): InflightLoad {
    const load: InflightLoad = { id, invalidated: false };
    this.running.add(load);
    return load;
  }

  end(load: InflightLoad): void {
    this.running.delete(load);
  }

  invalidate(ids: readonly string[]): void {
    if (this.running.size === 0) return;
    const targets = new Set(ids);
    for (const load of this.running) if (targets.has(load.id)) load.invalidated = true;
  }

  /** Tags and patterns are not known before a load ends: every running load is suspect. */
  invalidateAll(): void {
    for (const load of this.running) load.invalidated = true;
  }
}
