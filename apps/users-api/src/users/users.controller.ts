import { Body, Controller, Delete, Get, HttpCode, NotFoundException, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { Cacheable, type CacheableRequest, CacheEvict, CachePut } from '@cachekit/cache';
import type { User, UserSettings } from '@cachekit/users-domain';
import type { Response } from 'express';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { UserIdPipe } from './user-id.pipe.js';
import { USERS_LIST_TAG, USERS_NAMESPACE, userKey, userSettingsKey, usersPageKey } from './users.cache-keys.js';
import {
  createUserSchema,
  type CreateUserInput,
  listUsersSchema,
  type ListUsersQuery,
  parseUserId,
  replaceUserSchema,
  type ReplaceUserInput,
  settingsSchema,
  type SettingsInput,
  type UserField,
  userFieldSchema,
} from './users.schemas.js';
import { type AcceptedSettings, UsersService } from './users.service.js';

/** Keys of the user named in the path; none for an invalid id, which the handler answers with 400. */
const keyOfUserInPath = (request: CacheableRequest): string | undefined => {
  const id = parseUserId(request.params?.id);
  return id === undefined ? undefined : userKey(id);
};
/** The page the query asks for, as the handler will parse it; none for a bad query, which the handler answers with 400. */
const keyOfPage = (request: CacheableRequest): string | undefined => {
  const page = listUsersSchema.safeParse(request.query ?? {});
  return page.success ? usersPageKey(page.data) : undefined;
};
const keysOfUserInPath = (request: CacheableRequest): string[] => {
  const id = parseUserId(request.params?.id);
  return id === undefined ? [] : [userKey(id), userSettingsKey(id)];
};

@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  /** Also evicts the new id's key: a 404 for it may have been cached before it existed. */
  @Post()
  @CacheEvict({ namespace: USERS_NAMESPACE, keys: (_request, user: User) => [userKey(user.id)], tags: [USERS_LIST_TAG] })
  create(@Body(new ZodValidationPipe(createUserSchema)) body: CreateUserInput): Promise<User> {
    return this.users.create(body);
  }

  /** Cache-aside; an unknown id is a 404 that is cached briefly (the namespace's negative TTL). */
  @Get(':id')
  @Cacheable<User>({ namespace: USERS_NAMESPACE, key: keyOfUserInPath, version: (user) => user.version })
  async findOne(@Param('id', UserIdPipe) id: number): Promise<User> {
    const user = await this.users.findOne(id);
    // The same body as a cached "not found" gets, so a 404 reads alike whether or not it came from cache.
    if (!user) throw new NotFoundException();
    return user;
  }

  /** Each page is cached under one key per parsed page and tagged, so that any change to users evicts them all. */
  @Get()
  @Cacheable({ namespace: USERS_NAMESPACE, key: keyOfPage, tags: [USERS_LIST_TAG] })
  list(@Query(new ZodValidationPipe(listUsersSchema)) query: ListUsersQuery): Promise<User[]> {
    return this.users.list(query);
  }

  /** Write-through: the row is committed first, then cached; an older version never overwrites a newer one. */
  @Put(':id')
  @CachePut<User>({ namespace: USERS_NAMESPACE, key: keyOfUserInPath, version: (user) => user.version })
  @CacheEvict({ namespace: USERS_NAMESPACE, tags: [USERS_LIST_TAG] })
  replace(@Param('id', UserIdPipe) id: number, @Body(new ZodValidationPipe(replaceUserSchema)) body: ReplaceUserInput): Promise<User> {
    return this.users.replace(id, body);
  }

  /**
   * Write-behind: 202 once the settings are accepted (cached and queued); the worker persists them.
   * If the queue cannot be reached they are written at once instead: 200, `mode: 'written'`.
   */
  @Patch(':id/settings')
  async acceptSettings(
    @Param('id', UserIdPipe) id: number,
    @Body(new ZodValidationPipe(settingsSchema)) settings: SettingsInput,
    @Res({ passthrough: true }) response: Response,
  ): Promise<AcceptedSettings> {
    const accepted = await this.users.acceptSettings(id, settings);
    response.status(accepted.mode === 'queued' ? 202 : 200);
    return accepted;
  }

  /** The latest accepted settings, persisted or not (read-your-writes). */
  @Get(':id/settings')
  settings(@Param('id', UserIdPipe) id: number): Promise<UserSettings> {
    return this.users.settingsOf(id);
  }

  /** One field from the hash object cache (`X-Cache` says whether the hash was there). */
  @Get(':id/fields/:field')
  async field(
    @Param('id', UserIdPipe) id: number,
    @Param('field', new ZodValidationPipe(userFieldSchema)) field: UserField,
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ id: number; field: UserField; value: unknown }> {
    const { value, cache } = await this.users.field(id, field);
    response.setHeader('X-Cache', cache);
    return { id, field, value };
  }

  @Delete(':id')
  @HttpCode(204)
  @CacheEvict({ namespace: USERS_NAMESPACE, keys: keysOfUserInPath, tags: [USERS_LIST_TAG] })
  async remove(@Param('id', UserIdPipe) id: number): Promise<void> {
    await this.users.remove(id);
  }
}
