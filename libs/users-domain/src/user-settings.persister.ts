import type { DataSource, EntityManager } from 'typeorm';
import { User, type UserSettings } from './user.entity.js';

/**
 * Persists one write-behind version of a user's settings, idempotent and ordered: the row only
 * moves forward (`settings_version < $version`), so a retried or late older job changes nothing.
 * Shared by the worker (queued writes) and users-api (the synchronous fallback, inside its
 * transaction: pass its `EntityManager`).
 */
export async function persistUserSettings(
  dataSource: DataSource | EntityManager,
  id: number,
  settings: UserSettings,
  version: number,
): Promise<'written' | 'stale' | 'gone'> {
  const result = await dataSource
    .createQueryBuilder()
    .update(User)
    // jsonb: TypeORM's deep-partial typing cannot tell a JSON document from a relation.
    .set({ settings: settings as never, settingsVersion: version })
    .where('id = :id AND settings_version < :version', { id, version })
    .execute();
  if (result.affected) return 'written';
  return (await dataSource.getRepository(User).existsBy({ id })) ? 'stale' : 'gone';
}
