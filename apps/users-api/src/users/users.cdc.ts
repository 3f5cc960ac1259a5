import { glob } from '@cachekit/cache';
import type { CdcInvalidation, CdcNotification } from '@cachekit/cache/cdc';
import { USERS_LIST_TAG, USERS_NAMESPACE, userKey, userSettingsKey } from './users.cache-keys.js';

/** What a change of a users row evicts, whoever made it (this API, another service, psql). */
export function usersCdcMap(change: CdcNotification): CdcInvalidation | undefined {
  if (change.table !== 'users') return undefined;
  const id = Number(change.id);
  return {
    namespace: USERS_NAMESPACE,
    keys: [userKey(id), userSettingsKey(id)],
    // A PUT's write-through of an older version, arriving after this change, must not land.
    versions: change.version === undefined ? undefined : { [userKey(id)]: change.version },
    tags: [USERS_LIST_TAG],
    hashes: [String(id)],
  };
}

/** Everything the map covers, evicted after the LISTEN connection comes back. */
export function usersCdcResync(): CdcInvalidation[] {
  return [{ namespace: USERS_NAMESPACE, patterns: [glob`user:*`], tags: [USERS_LIST_TAG], hashPatterns: [glob`*`] }];
}
