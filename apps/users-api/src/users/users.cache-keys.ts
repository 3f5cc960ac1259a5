/** Where users live in the cache; shared by the read routes and every write that must evict. */
export const USERS_NAMESPACE = 'users';
export const USERS_LIST_TAG = 'list';

export const userKey = (id: number): string => `user:${id}`;

/** The latest accepted settings of a user (write-behind sets it at once). */
export const userSettingsKey = (id: number): string => `user:${id}:settings`;
