import {
  type CallHandler,
  type ExecutionContext,
  GatewayTimeoutException,
  HttpException,
  HttpStatus,
  Inject,
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
import { setResponseHeader } from './http-response.js';

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
const RPC_NAMESPACE = 'rpc';
/** Where `@MessagePattern` / `@EventPattern` keep their pattern (the handler's metadata, on every transport). */
const MICROSERVICE_PATTERN_METADATA = 'microservices:pattern';
const DEFAULT_METHODS = ['GET', 'HEAD'];

/** The handler's own failure, told apart from a failure of the cache. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

/** The handler answered with nothing: send that, but do not cache it (it would read as "not found"). */
class EmptyResult {
  constructor(readonly value: unknown) {}
}

/** The argument lists of executions a `CacheInterceptor` already took: one per request, however many are bound. */
const claimed = new WeakSet<object>();

/**
 * Serves `@Cacheable` handlers (HTTP routes and RPC message handlers) from the cache and carries
 * out `@CachePut` and `@CacheEvict`. Bound any number of times (globally, on the class, by the
 * decorators), it acts once per request. A failing cache never fails the request: the handler
 * runs as if there were no cache. Subclass and override `trackBy`, `isRequestCacheable` or
 * `principalOf` to change the policy.
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  protected readonly logger = new Logger('CacheInterceptor');

  constructor(
    @Inject(CacheService) protected readonly cache: CacheService,
    @Inject(Reflector) protected readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const type = context.getType();
    if (type !== 'http' && type !== 'rpc') return next.handle();
    const args = context.getArgs();
    if (claimed.has(args)) return next.handle();
    claimed.add(args);
    return type === 'http' ? this.interceptHttp(context, next) : this.interceptRpc(context, next);
  }

  private async interceptHttp(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<CacheableRequest>();
    const writes = this.afterWrites(context, next, [request], `${request.method} ${request.url}`, HTTP_NAMESPACE);
    if (writes) return writes;
    const options = this.optionsOf(context);
    if (!options || !this.isRequestCacheable(request, options)) return next.handle();

    let key: string | undefined;
    try {
      key = this.trackBy(request, options, context);
    } catch (error) {
      this.logger.warn(`no cache key for ${request.method} ${request.url}: ${(error as Error).message}`);
    }
    if (key === undefined) return next.handle();

    let notFound: unknown;
    try {
      const { value, status } = await this.lookup(key, options, HTTP_NAMESPACE, next, (error) => {
        if (!isNotFound(error)) return false;
        notFound = error;
        return true;
      });
      this.setStatusHeader(context, status);
      if (value === null) throw notFound ?? new NotFoundException();
      return of(value);
    } catch (error) {
      return this.afterFailure(error, next, `${request.method} ${request.url}`, () => this.setStatusHeader(context, 'MISS'));
    }
  }

  private async interceptRpc(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const data = context.switchToRpc().getData<unknown>();
    const label = `message ${this.patternOf(context)}`;
    const writes = this.afterWrites(context, next, [data], label, RPC_NAMESPACE);
    if (writes) return writes;
    const options = this.optionsOf(context);
    if (!options) return next.handle();
    let key: string | undefined;
    try {
      key = typeof options.key === 'function' ? options.key(data) : (options.key ?? `${this.patternOf(context)}|${canonical(data)}`);
    } catch (error) {
      this.logger.warn(`no cache key for ${label}: ${(error as Error).message}`);
    }
    if (key === undefined) return next.handle();
    try {
      const { value } = await this.lookup(key, options, RPC_NAMESPACE, next, () => false);
      return of(value);
    } catch (error) {
      return this.afterFailure(error, next, label, () => undefined);
    }
  }

  /** `@CachePut` / `@CacheEvict`: run after the handler succeeds, with `[...args, result]`. */
  private afterWrites(context: ExecutionContext, next: CallHandler, args: unknown[], label: string, defaultNamespace: string) {
    const targets = [context.getHandler(), context.getClass()];
    const put = this.reflector.getAllAndOverride<CachePutOptions | undefined>(CACHE_PUT_METADATA, targets);
    const evict = this.reflector.getAllAndOverride<CacheEvictOptions | undefined>(CACHE_EVICT_METADATA, targets);
    if (!put && !evict) return undefined;
    return next.handle().pipe(
      mergeMap(async (result) => {
        const namespace = (name?: string) => this.cache.namespace(name ?? defaultNamespace);
        try {
          if (put) await putFor(namespace(put.namespace), put, args, result);
          if (evict) await evictFor(namespace(evict.namespace), evict, [...args, result]);
        } catch (error) {
          this.logger.warn(`cache update after ${label} failed: ${(error as Error).message}`);
        }
        return result;
      }),
    );
  }

  private optionsOf(context: ExecutionContext): CacheableOptions | undefined {
    return this.reflector.getAllAndOverride<CacheableOptions | undefined>(CACHEABLE_METADATA, [context.getHandler(), context.getClass()]);
  }

  /** The handler as the cache's loader; `isNegative` says which handler errors mean "not found" (cached as null). */
  private lookup(
    key: string,
    options: CacheableOptions,
    defaultNamespace: string,
    next: CallHandler,
    isNegative: (error: unknown) => boolean,
  ) {
    const namespace = this.cache.namespace(options.namespace ?? defaultNamespace);
    return namespace.getOrSetWithStatus(
      key,
      async () => {
        try {
          const result = await lastValueFrom(next.handle(), { defaultValue: undefined });
          if (result === null || result === undefined) throw new EmptyResult(result);
          return result;
        } catch (error) {
          if (error instanceof EmptyResult) throw error;
          if (isNegative(error)) return null;
          throw new HandlerFailure(error);
        }
      },
      options,
    );
  }

  private afterFailure(error: unknown, next: CallHandler, label: string, onEmpty: () => void): Observable<unknown> {
    if (error instanceof HandlerFailure) throw error.error;
    if (error instanceof EmptyResult) {
      onEmpty();
      return of(error.value);
    }
    if (error instanceof HttpException) throw error;
    // The handler is still running (its load continues in the background): do not run it twice.
    if (error instanceof CacheError && error.code === 'CACHE_LOADER_TIMEOUT') throw new GatewayTimeoutException(error.message);
    this.logger.warn(`cache failed for ${label}, serving uncached: ${(error as Error).message}`);
    return next.handle();
  }

  /** GET and HEAD by default; requests with credentials only when the response varies by user. */
  protected isRequestCacheable(request: CacheableRequest, options: CacheableOptions): boolean {
    const methods = options.methods ?? DEFAULT_METHODS;
    if (!methods.includes(request.method.toUpperCase())) return false;
    return options.vary === 'user' || !this.hasCredentials(request);
  }

  /**
   * The cache key. Default: the handler (controller and method), the path params and the query,
   * each value typed (a string never equals an array), the same on Express and Fastify; plus
   * the principal when the route varies by user.
   */
  protected trackBy(request: CacheableRequest, options: CacheableOptions, context?: ExecutionContext): string | undefined {
    let key: string | undefined;
    if (typeof options.key === 'function') key = options.key(request);
    else if (typeof options.key === 'string') key = options.key;
    else key = this.defaultKey(request, context);
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

  private defaultKey(request: CacheableRequest, context?: ExecutionContext): string {
    const handler = context ? `${context.getClass().name}.${context.getHandler().name}` : keyPart(request.url.split('?')[0]);
    // A HEAD is answered from the GET's entry (RFC 9111 section 4.3.5).
    const method = request.method.toUpperCase() === 'HEAD' ? 'GET' : request.method.toUpperCase();
    return `${method}|${handler}|${canonicalPairs(request.params ?? {})}|${canonicalPairs(request.query ?? {})}`;
  }

  /** The message pattern of an RPC handler, as `@MessagePattern`/`@EventPattern` declared it. */
  private patternOf(context: ExecutionContext): string {
    const patterns: unknown = Reflect.getMetadata(MICROSERVICE_PATTERN_METADATA, context.getHandler());
    const pattern = Array.isArray(patterns) ? patterns[0] : patterns;
    if (pattern === undefined) return `${context.getClass().name}.${context.getHandler().name}`;
    return typeof pattern === 'string' ? keyPart(pattern) : canonical(pattern);
  }

  private setStatusHeader(context: ExecutionContext, status: string): void {
    setResponseHeader(context.switchToHttp().getResponse(), CACHE_STATUS_HEADER, status);
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof HttpException && error.getStatus() === HttpStatus.NOT_FOUND;
}

function header(request: CacheableRequest, name: string): string {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/**
 * `name=value` pairs sorted by name. A string is written as is (encoded); anything else (a
 * repeated query parameter's array) as `~` and its JSON, which no encoded string starts with:
 * `?a=1&a=2` and `?a=["1","2"]` never share a key.
 */
function canonicalPairs(record: Record<string, unknown>): string {
  return Object.keys(record)
    .sort()
    .map((name) => {
      const value = record[name];
      return `${keyPart(name)}=${typeof value === 'string' ? keyPart(value) : `~${keyPart(canonical(value))}`}`;
    })
    .join('&');
}

/** JSON with object keys sorted, so that equal payloads give equal keys whatever their key order. */
function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, node: unknown) => {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
      return Object.fromEntries(Object.entries(node).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }) ?? 'undefined'
  );
}
