import { glob } from '@cachekit/cache';
import type { CdcInvalidation, CdcNotification } from '@cachekit/cache/cdc';
import { USERS_LIST_TAG, USERS_NAMESPACE, userKey, userSettingsKey } from './users.cache-keys.js';

/**
 * The version of a deleted user: above every version a row can have (ids are never reused), so a
 * delete evicts any cached copy and no write-through of the row can land after it.
 */
export const DELETED_USER_VERSION = Number.MAX_SAFE_INTEGER;

/** What a change of a users row evicts, whoever made it (this API, another service, psql). */
export function usersCdcMap(change: CdcNotification): CdcInvalidation | undefined {
  if (change.table !== 'users') return undefined;
  const id = Number(change.id);
  // The trigger sends OLD.version on a DELETE, which an entry of that version would survive.
  const version = change.op === 'DELETE' ? DELETED_USER_VERSION : change.version;
  return {
    namespace: USERS_NAMESPACE,
    keys: [userKey(id), userSettingsKey(id)],
    // A PUT's write-through of an older version, arriving after this change, must not land.
    versions: version === undefined ? undefined : { [userKey(id)]: version },
    tags: [USERS_LIST_TAG],
    hashes: [String(id)],
  };
}

/** Everything the map covers, evicted after the LISTEN connection comes back. */
export function usersCdcResync(): CdcInvalidation[] {
  return [{ namespace: USERS_NAMESPACE, patterns: [glob`user:*`], tags: [USERS_LIST_TAG], hashPatterns: [glob`*`] }];
}
