export { User } from './user.entity.js';
export { persistUserSettings } from './user-settings.persister.js';
export {
  cacheRedisFromEnv,
  cacheRedisVariables,
  parseEnvironment,
  redisUrlVariable,
  type SharedConfig,
  sharedConfigFromEnv,
  sharedVariables,
} from './cache-redis.env.js';
export type { UserSettings } from './user.entity.js';

export { USERS_DOMAIN_ENTITIES, USERS_DOMAIN_MIGRATIONS } from './schema.js';
export { usersDatabase } from './users-database.js';

/** The write-behind entity name of a user's settings (jobs name it; the worker persists it). */
export const USER_SETTINGS_ENTITY = 'user-settings';

/** The NOTIFY channel of the users trigger (CDC invalidation). */
export const USERS_CDC_CHANNEL = 'cache_invalidation';

/** PostgreSQL's unique_violation SQLSTATE. */
export const PG_UNIQUE_VIOLATION = '23505';
