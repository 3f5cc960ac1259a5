import { Body, Controller, Delete, Get, HttpCode, NotFoundException, Param, Post, Put, Query } from '@nestjs/common';
import { Cacheable, type CacheableRequest, CacheEvict } from '@cachekit/cache';
import type { User } from '@cachekit/users-domain';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { UserIdPipe } from './user-id.pipe.js';
import { USERS_LIST_TAG, USERS_NAMESPACE, userKey } from './users.cache-keys.js';
import {
  createUserSchema,
  type CreateUserInput,
  listUsersSchema,
  type ListUsersQuery,
  parseUserId,
  replaceUserSchema,
  type ReplaceUserInput,
} from './users.schemas.js';
import { UsersService } from './users.service.js';

/** Keys of the user named in the path; none for an invalid id, which the handler answers with 400. */
const keyOfUserInPath = (request: CacheableRequest): string | undefined => {
  const id = parseUserId(request.params?.id);
  return id === undefined ? undefined : userKey(id);
};
const keysOfUserInPath = (request: CacheableRequest): string[] => {
  const key = keyOfUserInPath(request);
  return key === undefined ? [] : [key];
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
  @Cacheable({ namespace: USERS_NAMESPACE, key: keyOfUserInPath })
  async findOne(@Param('id', UserIdPipe) id: number): Promise<User> {
    const user = await this.users.findOne(id);
    // The same body as a cached "not found" gets, so a 404 reads alike whether or not it came from cache.
    if (!user) throw new NotFoundException();
    return user;
  }

  /** Each page is cached under its own key and tagged, so that any change to users evicts them all. */
  @Get()
  @Cacheable({ namespace: USERS_NAMESPACE, tags: [USERS_LIST_TAG] })
  list(@Query(new ZodValidationPipe(listUsersSchema)) query: ListUsersQuery): Promise<User[]> {
    return this.users.list(query);
  }

  @Put(':id')
  @CacheEvict({ namespace: USERS_NAMESPACE, keys: keysOfUserInPath, tags: [USERS_LIST_TAG] })
  replace(
    @Param('id', UserIdPipe) id: number,
    @Body(new ZodValidationPipe(replaceUserSchema)) body: ReplaceUserInput,
  ): Promise<User> {
    return this.users.replace(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @CacheEvict({ namespace: USERS_NAMESPACE, keys: keysOfUserInPath, tags: [USERS_LIST_TAG] })
  async remove(@Param('id', UserIdPipe) id: number): Promise<void> {
    await this.users.remove(id);
  }
}
