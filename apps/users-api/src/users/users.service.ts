import { ConflictException, HttpException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { CacheService, type HashCache, type HashObject } from '@cachekit/cache';
import { persistUserSettings, PG_UNIQUE_VIOLATION, User, USER_SETTINGS_ENTITY, type UserSettings } from '@cachekit/users-domain';
import { QueryFailedError, Repository } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config.js';
import { USERS_NAMESPACE, userSettingsKey } from './users.cache-keys.js';
import type { CreateUserInput, ListUsersQuery, ReplaceUserInput, UserField } from './users.schemas.js';

export interface AcceptedSettings {
  id: number;
  settings: UserSettings;
  version: number;
  /** `queued`: the worker persists it; `written`: the queue was away, it was persisted at once */
  mode: 'queued' | 'written';
}

/** The users table, the write-behind path of user settings, and users as hash objects (one field at a time). */
@Injectable()
export class UsersService {
  private readonly hashes: HashCache;

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cache: CacheService,
  ) {
    this.hashes = cache.namespace(USERS_NAMESPACE).hash({ ttl: config.usersCacheTtlMs });
  }

  async create(input: CreateUserInput): Promise<User> {
    try {
      const { id } = await this.users.save(this.users.create(input));
      // Read back as every other route shows a user (internal columns are not selected).
      return await this.users.findOneByOrFail({ id });
    } catch (error) {
      throw conflictOnDuplicateEmail(error, input.email);
    }
  }

  /** One user or `null`; `USERS_READ_DELAY_MS` makes the read slow on purpose, to show stampedes. */
  async findOne(id: number): Promise<User | null> {
    if (this.config.usersReadDelayMs > 0) {
      await this.users.query('SELECT pg_sleep($1)', [this.config.usersReadDelayMs / 1000]);
    }
    return this.users.findOneBy({ id });
  }

  list(query: ListUsersQuery): Promise<User[]> {
    return this.users.find({ order: { id: 'ASC' }, take: query.limit, skip: query.offset });
  }

  /** Replaces email and name under a row lock; bumps `version`. */
  async replace(id: number, input: ReplaceUserInput): Promise<User> {
    let user: User;
    try {
      user = await this.users.manager.transaction(async (manager) => {
        const current = await manager.findOne(User, { where: { id }, lock: { mode: 'pessimistic_write' } });
        if (!current) throw new NotFoundException(`user ${id} not found`);
        current.email = input.email;
        current.name = input.name;
        return manager.save(current);
      });
    } catch (error) {
      throw conflictOnDuplicateEmail(error, input.email);
    }
    await this.dropHash(id);
    return user;
  }

  async remove(id: number): Promise<void> {
    const result = await this.users.delete({ id });
    if (!result.affected) throw new NotFoundException(`user ${id} not found`);
    await this.dropHash(id);
  }

  /** One field of a user from the hash object cache; on a miss the whole user is loaded and stored as a hash. */
  async field(id: number, field: UserField): Promise<{ value: unknown; cache: 'HIT' | 'MISS' }> {
    const cached = await this.hashes.getField(id, field).catch(() => undefined); // Redis away: go to the database
    if (cached !== undefined) return { value: cached, cache: 'HIT' };
    let loaded: HashObject | null | undefined;
    const load = async () => {
      const user = await this.findOne(id);
      return (loaded = user && { ...user });
    };
    // Redis away: the database's answer still goes out (read now, or already read).
    const user = await this.hashes.fill(id, load).catch(() => (loaded === undefined ? load() : loaded));
    if (!user) throw new NotFoundException(`user ${id} not found`);
    return { value: user[field], cache: 'MISS' };
  }

  /** The hash copy of a user goes with every change that is not a settings write (CDC does the same for changes made elsewhere). */
  async dropHash(id: number): Promise<void> {
    await this.cache.namespace(USERS_NAMESPACE).invalidate({ hashes: [String(id)] });
  }

  /** Accepts new settings at once (cache + queue); the worker writes them to the database later. */
  async acceptSettings(id: number, settings: UserSettings): Promise<AcceptedSettings> {
    if (!(await this.users.existsBy({ id }))) throw new NotFoundException(`user ${id} not found`);
    let accepted: { version: number; mode: 'queued' | 'written' };
    try {
      accepted = await this.cache.namespace(USERS_NAMESPACE).writeBehind(userSettingsKey(id), settings, {
        entity: USER_SETTINGS_ENTITY,
        id,
        persistNow: async (value, at) => {
          if ((await persistUserSettings(this.users.manager.connection, id, value, at)) === 'gone') {
            throw new NotFoundException(`user ${id} not found`);
          }
        },
      });
    } catch (error) {
      if (error instanceof HttpException) throw error;
      throw new ServiceUnavailableException('the settings could be neither queued nor written; nothing was accepted');
    }
    const { version, mode } = accepted;
    // One field changes: update it in place (the hash keeps its TTL), do not rewrite the object.
    await this.hashes.setField(id, 'settings', settings).catch(() => undefined);
    return { id, settings, version, mode };
  }

  /** Read-your-writes: the newest accepted settings (pending or cached), else the database's. */
  async settingsOf(id: number): Promise<UserSettings> {
    const users = this.cache.namespace(USERS_NAMESPACE);
    const pending = await users.pendingWrite<UserSettings>(userSettingsKey(id));
    if (pending) return pending.value;
    const settings = await users.getOrSet(userSettingsKey(id), async () => (await this.users.findOneBy({ id }))?.settings ?? null);
    if (settings === null) throw new NotFoundException(`user ${id} not found`);
    return settings;
  }
}

function conflictOnDuplicateEmail(error: unknown, email: string): unknown {
  const code = error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
  return code === PG_UNIQUE_VIOLATION ? new ConflictException(`a user with email ${email} already exists`) : error;
}
