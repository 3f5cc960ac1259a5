import {
  type CallHandler,
  type ExecutionContext,
  GatewayTimeoutException,
  HttpException,
  HttpStatus,
  Injectable,
  Logger,
  type NestInterceptor,
  NotFoundException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { lastValueFrom, mergeMap, type Observable, of } from 'rxjs';
import { CACHE_EVICT_METADATA, CACHE_PUT_METADATA, CACHE_STATUS_HEADER, CACHEABLE_METADATA } from '../cache.constants.js';
import { CacheError } from '../cache.errors.js';
import { CacheService } from '../cache.service.js';
import type { CacheEvictOptions } from '../decorators/cache-evict.decorator.js';
import { evictFor, putFor } from '../decorators/cache-eviction.js';
import type { CachePutOptions } from '../decorators/cache-put.decorator.js';
import type { CacheableOptions } from '../decorators/cacheable.decorator.js';
import { keyPart } from '../keys/key-part.js';

/** Minimal view of an HTTP request (Express or Fastify). */
export interface CacheableRequest {
  method: string;
  url: string;
  route?: { path?: string };
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  user?: { id?: unknown; sub?: unknown };
}

const HTTP_NAMESPACE = 'http';
const DEFAULT_METHODS = ['GET', 'HEAD'];

/** The handler's own failure, told apart from a failure of the cache. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

/** The handler answered with nothing: send that, but do not cache it (it would read as "not found"). */
class EmptyResult {
  constructor(readonly value: unknown) {}
}

/**
 * Serves `@Cacheable` controller methods from the cache and carries out `@CachePut` and `@CacheEvict`.
 * A failing cache never fails the request: the handler runs as if there were no cache.
 * Subclass and override `trackBy`, `isRequestCacheable` or `principalOf` to change the policy.
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  protected readonly logger = new Logger('CacheInterceptor');

  constructor(
    protected readonly cache: CacheService,
    protected readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const targets = [context.getHandler(), context.getClass()];
    const request = context.switchToHttp().getRequest<CacheableRequest>();
    const put = this.reflector.getAllAndOverride<CachePutOptions | undefined>(CACHE_PUT_METADATA, targets);
    const evict = this.reflector.getAllAndOverride<CacheEvictOptions | undefined>(CACHE_EVICT_METADATA, targets);
    if (put || evict) {
      return next.handle().pipe(
        mergeMap(async (result) => {
          const namespace = (name?: string) => this.cache.namespace(name ?? HTTP_NAMESPACE);
          try {
            if (put) await putFor(namespace(put.namespace), put, [request], result);
            if (evict) await evictFor(namespace(evict.namespace), evict, [request, result]);
          } catch (error) {
            this.logger.warn(`cache update after ${request.method} ${request.url} failed: ${(error as Error).message}`);
          }
          return result;
        }),
      );
    }
    const options = this.reflector.getAllAndOverride<CacheableOptions | undefined>(CACHEABLE_METADATA, targets);
    if (!options || !this.isRequestCacheable(request, options)) return next.handle();

    let key: string | undefined;
    try {
      key = this.trackBy(request, options);
    } catch (error) {
      this.logger.warn(`no cache key for ${request.method} ${request.url}: ${(error as Error).message}`);
    }
    if (key === undefined) return next.handle();

    let notFound: unknown;
    try {
      const namespace = this.cache.namespace(options.namespace ?? HTTP_NAMESPACE);
      const { value, status } = await namespace.getOrSetWithStatus(
        key,
        async () => {
          try {
            const result = await lastValueFrom(next.handle(), { defaultValue: undefined });
            if (result === null || result === undefined) throw new EmptyResult(result);
            return result;
          } catch (error) {
            if (error instanceof EmptyResult) throw error;
            if (isNotFound(error)) {
              notFound = error;
              return null;
            }
            throw new HandlerFailure(error);
          }
        },
        options,
      );
      this.setStatusHeader(context, status);
      if (value === null) throw notFound ?? new NotFoundException();
      return of(value);
    } catch (error) {
      if (error instanceof HandlerFailure) throw error.error;
      if (error instanceof EmptyResult) {
        this.setStatusHeader(context, 'MISS');
        return of(error.value);
      }
      if (error instanceof HttpException) throw error;
      // The handler is still running (its load continues in the background): do not run it twice.
      if (error instanceof CacheError && error.code === 'CACHE_LOADER_TIMEOUT') throw new GatewayTimeoutException(error.message);
      this.logger.warn(`cache failed for ${request.method} ${request.url}, serving uncached: ${(error as Error).message}`);
      return next.handle();
    }
  }

  /** GET and HEAD by default; requests with credentials only when the response varies by user. */
  protected isRequestCacheable(request: CacheableRequest, options: CacheableOptions): boolean {
    const methods = options.methods ?? DEFAULT_METHODS;
    if (!methods.includes(request.method.toUpperCase())) return false;
    return options.vary === 'user' || !this.hasCredentials(request);
  }

  /** The cache key: route template, path params and sorted query, plus the principal when it varies by user. */
  protected trackBy(request: CacheableRequest, options: CacheableOptions): string | undefined {
    let key: string | undefined;
    if (typeof options.key === 'function') key = options.key(request);
    else if (typeof options.key === 'string') key = options.key;
    else key = this.defaultKey(request);
    if (key === undefined) return undefined;
    if (options.vary === 'user' && this.hasCredentials(request)) key += `|user=${this.principalOf(request)}`;
    return key;
  }

  /** Who is asking: the authenticated user's id when a guard set one, else a hash of the credentials. */
  protected principalOf(request: CacheableRequest): string {
    const id = request.user?.id ?? request.user?.sub;
    if (id !== undefined && id !== null) return `id:${keyPart(String(id))}`;
    const credentials = `${header(request, 'authorization')}\n${header(request, 'cookie')}`;
    return `h:${createHash('sha256').update(credentials).digest('base64url').slice(0, 32)}`;
  }

  protected hasCredentials(request: CacheableRequest): boolean {
    return header(request, 'authorization') !== '' || header(request, 'cookie') !== '';
  }

  private defaultKey(request: CacheableRequest): string {
    const route = request.route?.path ?? request.url.split('?')[0];
    const params = sortedPairs(request.params ?? {});
    const query = sortedPairs(request.query ?? {});
    return `${keyPart(route)}|${params}|${query}`;
  }

  private setStatusHeader(context: ExecutionContext, status: string): void {
    const response = context.switchToHttp().getResponse<{ setHeader?: (n: string, v: string) => void; header?: (n: string, v: string) => void }>();
    if (typeof response.setHeader === 'function') response.setHeader(CACHE_STATUS_HEADER, status);
    else response.header?.(CACHE_STATUS_HEADER, status);
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof HttpException && error.getStatus() === HttpStatus.NOT_FOUND;
}

function header(request: CacheableRequest, name: string): string {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

function sortedPairs(record: Record<string, unknown>): string {
  return Object.keys(record)
    .sort()
    .map((name) => {
      const value = record[name];
      return `${keyPart(name)}=${keyPart(typeof value === 'string' ? value : JSON.stringify(value))}`;
    })
    .join('&');
}
