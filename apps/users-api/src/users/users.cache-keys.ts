/** Where users live in the cache; shared by the read routes and every write that must evict. */
export const USERS_NAMESPACE = 'users';
export const USERS_LIST_TAG = 'list';

export const userKey = (id: number): string => `user:${id}`;

/** The latest accepted settings of a user (write-behind sets it at once). */
export const userSettingsKey = (id: number): string => `user:${id}:settings`;

/** One page of the user list, by its parsed limit and offset: `?limit=010` and `?limit=10&offset=0` are one entry. */
export const usersPageKey = (page: { limit: number; offset: number }): string => `page:${page.limit}:${page.offset}`;
