import { CreateUsers1764115200000 } from './migrations/1764115200000-create-users.js';
import { UsersNotifyTrigger1764115300000 } from './migrations/1764115300000-users-notify-trigger.js';
import { UsersSettingsVersion1764115400000 } from './migrations/1764115400000-users-settings-version.js';
import { UsersNotifyVersion1764115500000 } from './migrations/1764115500000-users-notify-version.js';
import { User } from './user.entity.js';

export const USERS_DOMAIN_ENTITIES = [User];
/** In order; run on start-up by every app that owns the schema. */
export const USERS_DOMAIN_MIGRATIONS = [
  CreateUsers1764115200000,
  UsersNotifyTrigger1764115300000,
  UsersSettingsVersion1764115400000,
  UsersNotifyVersion1764115500000,
];
