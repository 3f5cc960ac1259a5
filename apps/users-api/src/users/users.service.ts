import { ConflictException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { PG_UNIQUE_VIOLATION, User } from '@cachekit/users-domain';
import { QueryFailedError, Repository } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app.config.js';
import type { CreateUserInput, ListUsersQuery, ReplaceUserInput } from './users.schemas.js';

/** The users table. Caching is the controller's concern; this class only talks to PostgreSQL. */
@Injectable()
export class UsersService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(input: CreateUserInput): Promise<User> {
    try {
      return await this.users.save(this.users.create(input));
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

  /** Replaces email and name (and settings when given) under a row lock; bumps `version`. */
  async replace(id: number, input: ReplaceUserInput): Promise<User> {
    try {
      return await this.users.manager.transaction(async (manager) => {
        const user = await manager.findOne(User, { where: { id }, lock: { mode: 'pessimistic_write' } });
        if (!user) throw new NotFoundException(`user ${id} not found`);
        user.email = input.email;
        user.name = input.name;
        if (input.settings !== undefined) user.settings = input.settings;
        return manager.save(user);
      });
    } catch (error) {
      throw conflictOnDuplicateEmail(error, input.email);
    }
  }

  async remove(id: number): Promise<void> {
    const result = await this.users.delete({ id });
    if (!result.affected) throw new NotFoundException(`user ${id} not found`);
  }
}

function conflictOnDuplicateEmail(error: unknown, email: string): unknown {
  const code = error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
  return code === PG_UNIQUE_VIOLATION ? new ConflictException(`a user with email ${email} already exists`) : error;
}
