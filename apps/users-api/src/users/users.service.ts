import { ConflictException, HttpException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { CacheService, type HashCache, type HashObject } from '@cachekit/cache';
import { persistUserSettings, PG_UNIQUE_VIOLATION, User, USER_SETTINGS_ENTITY, type UserSettings } from '@cachekit/users-domain';
import { QueryFailedError, Repository } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config.js';
import { USERS_LIST_TAG, USERS_NAMESPACE, userKey, userSettingsKey } from './users.cache-keys.js';
import { DELETED_USER_VERSION } from './users.cdc.js';
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

  /**
   * Deletes the row, then evicts the user as its CDC echo will: with the deleted version, so that a
   * write-through of the row arriving late (a PUT that committed before) cannot bring it back.
   */
  async remove(id: number): Promise<void> {
    const result = await this.users.delete({ id });
    if (!result.affected) throw new NotFoundException(`user ${id} not found`);
    await this.cache.namespace(USERS_NAMESPACE).invalidate({
      versions: { [userKey(id)]: DELETED_USER_VERSION },
      keys: [userSettingsKey(id)],
      tags: [USERS_LIST_TAG],
      hashes: [String(id)],
    });
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

  /**
   * Accepts new settings at once (cache + queue); the worker writes them to the database later.
   * While PostgreSQL is away the write is still accepted: the worker settles whether the user
   * exists (a write for a missing row is dead-lettered and stops being pending).
   */
  async acceptSettings(id: number, settings: UserSettings): Promise<AcceptedSettings> {
    // `undefined`: the database did not answer, so it cannot be known now.
    const exists = await this.users.existsBy({ id }).catch(() => undefined);
    if (exists === false) throw new NotFoundException(`user ${id} not found`);
    let accepted: { version: number; mode: 'queued' | 'written' };
    try {
      accepted = await this.cache.namespace(USERS_NAMESPACE).writeBehind(userSettingsKey(id), settings, {
        entity: USER_SETTINGS_ENTITY,
        id,
        persistNow: (value, version) => this.persistSettingsNow(id, value, version),
      });
    } catch (error) {
      if (error instanceof HttpException) throw error;
      // The queue may have taken it before its answer was lost; the sweeper then persists it. A retry is safe.
      throw new ServiceUnavailableException('the settings could be neither queued nor written; retry the request');
    }
    const { version, mode } = accepted;
    // One field changes: update it in place (the hash keeps its TTL), do not rewrite the object.
    await this.hashes.setField(id, 'settings', settings).catch(() => undefined);
    return { id, settings, version, mode };
  }

  /**
   * Read-your-writes: the newest accepted settings (pending or cached), else the database's. A
   * pending write is served only while it is newer than what the row holds, and the row exists.
   */
  async settingsOf(id: number): Promise<UserSettings> {
    const users = this.cache.namespace(USERS_NAMESPACE);
    const pending = await users.pendingWrite<UserSettings>(userSettingsKey(id));
    if (pending) return this.newerThanRow(id, pending);
    const settings = await users.getOrSet(userSettingsKey(id), async () => (await this.users.findOneBy({ id }))?.settings ?? null);
    if (settings === null) throw new NotFoundException(`user ${id} not found`);
    return settings;
  }

  /** A pending write against the row: the row's settings once it holds that version or a newer one. */
  private async newerThanRow(id: number, pending: { version: number; value: UserSettings }): Promise<UserSettings> {
    let row: User | null;
    try {
      row = await this.users.findOne({ where: { id }, select: { id: true, settings: true, settingsVersion: true } });
    } catch {
      return pending.value; // PostgreSQL away: the accepted write is the newest known
    }
    if (!row) throw new NotFoundException(`user ${id} not found`);
    return row.settingsVersion >= pending.version ? row.settings : pending.value;
  }

  /**
   * The synchronous fallback (the queue is away): above the version the row holds, whatever clock
   * gave `version`, so the write acknowledged now is the one that stays. Answers the version written.
   */
  private persistSettingsNow(id: number, settings: UserSettings, version: number): Promise<number> {
    return this.users.manager.transaction(async (manager) => {
      const row = await manager.findOne(User, {
        where: { id },
        select: { id: true, settingsVersion: true },
        lock: { mode: 'pessimistic_write' },
      });
      if (!row) throw new NotFoundException(`user ${id} not found`);
      const at = Math.max(version, row.settingsVersion + 1);
      await persistUserSettings(manager, id, settings, at);
      return at;
    });
  }
}

function conflictOnDuplicateEmail(error: unknown, email: string): unknown {
  const code = error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
  return code === PG_UNIQUE_VIOLATION ? new ConflictException(`a user with email ${email} already exists`) : error;
}
