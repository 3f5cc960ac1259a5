import { CreateUsers1764115200000 } from './migrations/1764115200000-create-users.js';
import { UsersNotifyTrigger1764115300000 } from './migrations/1764115300000-users-notify-trigger.js';
import { UsersSettingsVersion1764115400000 } from './migrations/1764115400000-users-settings-version.js';
import { UsersNotifyVersion1764115500000 } from './migrations/1764115500000-users-notify-version.js';
import { User } from './user.entity.js';

export { User } from './user.entity.js';
export { persistUserSettings } from './user-settings.persister.js';
export { cacheRedisFromEnv, cacheRedisVariables, parseEnvironment, redisUrlVariable } from './cache-redis.env.js';
export type { UserSettings } from './user.entity.js';

export const USERS_DOMAIN_ENTITIES = [User];
/** In order; run on start-up by every app that owns the schema. */
export const USERS_DOMAIN_MIGRATIONS = [
  CreateUsers1764115200000,
  UsersNotifyTrigger1764115300000,
  UsersSettingsVersion1764115400000,
  UsersNotifyVersion1764115500000,
];

/** The write-behind entity name of a user's settings (jobs name it; the worker persists it). */
export const USER_SETTINGS_ENTITY = 'user-settings';

/** The NOTIFY channel of the users trigger (CDC invalidation). */
export const USERS_CDC_CHANNEL = 'cache_invalidation';

/** PostgreSQL's unique_violation SQLSTATE. */
export const PG_UNIQUE_VIOLATION = '23505';
