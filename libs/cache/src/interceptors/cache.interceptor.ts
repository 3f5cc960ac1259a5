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
  type Type,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { from, lastValueFrom, mergeMap, type Observable, of } from 'rxjs';
import { CACHE_CONFIG, CACHE_EVICT_METADATA, CACHE_PUT_METADATA, CACHE_STATUS_HEADER, CACHEABLE_METADATA } from '../cache.constants.js';
import { CacheTimeoutError } from '../cache.errors.js';
import type { CacheConfig } from '../cache.options.js';
import { CacheService, LOOKUP } from '../cache.service.js';
import type { CacheableOptions, CacheEvictOptions, CachePutOptions } from '../cache-decorator.options.js';
import { evictFor, putFor } from '../cache-decorator.writes.js';
import { isResponseRecord, RESPONSE_MARK, type ResponseRecord, Uncached } from '../entry/http-response.js';
import { keyPart } from '../keys/key-part.js';
import { canonical, canonicalPairs } from '../keys/canonical.js';
import { getResponseHeader, sendStoredJson, setResponseHeader } from './http-response.js';
import { whyNotStorable } from './storable.js';
import { toWireBody } from './wire-body.js';

/** Minimal view of an HTTP request (Express or Fastify). */
export interface CacheableRequest {
  method: string;
  url: string;
  hostname?: string;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  /** set by a guard or a passport strategy: a principal, so never a shared response */
  user?: unknown;
  /** host params of `@Controller({ host })`, set by Nest's router */
  hosts?: Record<string, string>;
}

/** The format of default HTTP keys: a fleet in the middle of an upgrade never reads another's. */
const HTTP_KEY_FORMAT = 'h1';
const HTTP_NAMESPACE = 'http';
const RPC_NAMESPACE = 'rpc';
const DEFAULT_METHODS = ['GET', 'HEAD'];
/** Where `@MessagePattern` / `@EventPattern` keep their pattern (the handler's metadata, on every transport). */
const MICROSERVICE_PATTERN_METADATA = 'microservices:pattern';
/** Nest's metadata: `@Version()` of a handler or controller, `@Res()`/`@Next()` params, their passthrough flag. */
const VERSION_METADATA = '__version__';
const ROUTE_ARGS_METADATA = '__routeArguments__';
const RESPONSE_PASSTHROUGH_METADATA = '__responsePassthrough__';
const SSE_METADATA = '__sse__';
const RESPONSE_PARAM = 1;
const NEXT_PARAM = 2;
/** Representation headers a hit replays as the miss sent them. */
const REPLAYED_HEADERS = ['content-type', 'content-language', 'content-disposition'];

/** The handler's own failure, told apart from a failure of the cache. Fail-safe covers only real failures. */
class HandlerFailure {
  readonly failSafe: boolean;

  constructor(readonly error: unknown) {
    this.failSafe = !(error instanceof HttpException && error.getStatus() < 500);
  }
}

/** The handler, run at most once for a request; its outcome is kept for whatever happens after it. */
class HandlerRun {
  /** set once the handler was called for this request */
  outcome?: Promise<unknown>;

  constructor(private readonly next: CallHandler) {}

  /** Calls the handler; its error comes back as what `recover` makes of it, else as a `HandlerFailure`. */
  async call(recover?: (error: unknown) => unknown): Promise<unknown> {
    this.outcome = lastValueFrom(this.next.handle(), { defaultValue: undefined });
    try {
      return await this.outcome;
    } catch (error) {
      const recovered = recover?.(error);
      if (recovered !== undefined) return recovered;
      throw new HandlerFailure(error);
    }
  }
}

/** The argument lists of executions a `CacheInterceptor` already took: one per request, however many are bound. */
const claimed = new WeakSet<object>();

/** What the decorators of one handler say, read once per handler instead of on every request. */
interface HandlerPlan {
  put?: CachePutOptions;
  evict?: CacheEvictOptions;
  cacheable?: CacheableOptions;
  /** the handler sends its own response (or a stream of events): the cache could neither see nor replay it */
  respondsItself: boolean;
  /** `Controller.handler`, with its declared version: the handler part of a default HTTP key */
  route: string;
  /** the request headers an HTTP key holds: the module's, then the handler's (lower case) */
  varyHeaders: readonly string[];
}

/**
 * Serves `@Cacheable` handlers (HTTP routes and RPC message handlers) from the cache and carries
 * out `@CachePut` and `@CacheEvict`. Bound any number of times (globally, on the class, by the
 * decorators), it acts once per request. Over HTTP it is a shared cache (RFC 9111): it never
 * serves one principal's response to another, and stores only responses that may be shared.
 * A failing cache never fails the request, and the handler runs at most once per request.
 * Subclass and override `trackBy`, `isRequestCacheable` or `principalOf` to change the policy.
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  protected readonly logger = new Logger('CacheInterceptor');
  private readonly warned = new Set<string>();
  /** by controller class, then by handler: a handler inherited by two controllers has a plan for each */
  private readonly plans = new WeakMap<object, WeakMap<object, HandlerPlan>>();

  constructor(
    @Inject(CacheService) protected readonly cache: CacheService,
    @Inject(Reflector) protected readonly reflector: Reflector,
    @Inject(CACHE_CONFIG) protected readonly config: CacheConfig,
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
    const http = context.switchToHttp();
    const request = http.getRequest<CacheableRequest>();
    const response: unknown = http.getResponse();
    const label = () => `${request.method} ${request.url}`;
    const plan = this.planOf(context);
    if (plan.put || plan.evict) return this.afterWrites(plan, next, [request], label, HTTP_NAMESPACE);
    const options = plan.cacheable;
    if (!options || !this.isRequestCacheable(request, options) || plan.respondsItself) return next.handle();

    let principal: string | undefined;
    if (this.hasCredentials(request)) {
      principal = options.vary === 'user' ? this.principalOf(request) : undefined;
      if (principal === undefined) {
        setResponseHeader(response, CACHE_STATUS_HEADER, 'BYPASS');
        return next.handle();
      }
    }

    let key: string | undefined;
    try {
      key = this.trackBy(request, options, context);
      if (key !== undefined && principal !== undefined) key = `${key}|user=${principal}`;
    } catch (error) {
      this.logger.warn(`no cache key for ${label()}: ${(error as Error).message}`);
    }
    if (key === undefined) return next.handle();

    const handler = new HandlerRun(next);
    const loader = async (): Promise<unknown> => {
      let notFound: HttpException | undefined;
      const result = await handler.call((error) => (isNotFound(error) ? (notFound = error as HttpException) : undefined));
      // Only a miss needs them: the headers the key holds, which a response may vary by.
      const keyedHeaders = plan.varyHeaders;
      if (notFound) {
        // A 404 is cached with its body, under the same storage rules as any response.
        return whyNotStorable(response, {}, principal !== undefined, keyedHeaders, HttpStatus.NOT_FOUND)
          ? new Uncached(notFound)
          : notFoundRecord(notFound);
      }
      if (result === null || result === undefined) return new Uncached(result); // null would read as "not found"
      const refusal = whyNotStorable(response, result, principal !== undefined, keyedHeaders);
      if (refusal) {
        if (refusal.warn) this.warnOnce(`${context.getClass().name}.${context.getHandler().name}`, refusal.reason);
        return new Uncached(result);
      }
      const body = await toWireBody(result, this.reflector, context);
      handler.outcome = Promise.resolve(body);
      return withRepresentation(response, body);
    };

    try {
      const namespace = this.cache.namespace(options.namespace ?? HTTP_NAMESPACE);
      const { value, status, json } = await namespace[LOOKUP](key, loader, options);
      if (value instanceof Uncached) {
        // Not stored: only the request whose handler produced it may have it.
        setResponseHeader(response, CACHE_STATUS_HEADER, 'MISS');
        if (handler.outcome === undefined) return next.handle();
        if (value.value instanceof HttpException) throw value.value; // this request's own 404, not stored
        return of(value.value);
      }
      setResponseHeader(response, CACHE_STATUS_HEADER, status);
      const body = replay(response, value);
      // A hit of a plain JSON body: its stored text goes out as it is, no second serialization.
      if (json !== undefined && body === value && typeof body === 'object' && body !== null) sendStoredJson(response, body, json);
      return of(body);
    } catch (error) {
      if (error instanceof HandlerFailure) throw error.error;
      if (error instanceof HttpException) throw error;
      if (handler.outcome !== undefined) {
        // The handler ran (or still runs) for this request: answer with its outcome, never run it again.
        setResponseHeader(response, CACHE_STATUS_HEADER, 'MISS');
        return from(handler.outcome);
      }
      if (error instanceof CacheTimeoutError) throw new GatewayTimeoutException(error.message);
      this.logger.warn(`cache failed for ${label()}, serving uncached: ${(error as Error).message}`);
      return next.handle();
    }
  }

  private async interceptRpc(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const data = context.switchToRpc().getData<unknown>();
    const label = () => `message ${this.patternOf(context)}`;
    const plan = this.planOf(context);
    if (plan.put || plan.evict) return this.afterWrites(plan, next, [data], label, RPC_NAMESPACE);
    const options = plan.cacheable;
    if (!options) return next.handle();
    let key: string | undefined;
    try {
      key = typeof options.key === 'function' ? options.key(data) : (options.key ?? `${this.patternOf(context)}|${canonical(data)}`);
    } catch (error) {
      this.logger.warn(`no cache key for ${label()}: ${(error as Error).message}`);
    }
    if (key === undefined) return next.handle();
    const handler = new HandlerRun(next);
    const loader = async (): Promise<unknown> => {
      const result = await handler.call();
      return result === null || result === undefined ? new Uncached(result) : result;
    };
    try {
      const { value } = await this.cache.namespace(options.namespace ?? RPC_NAMESPACE).getOrSetWithStatus(key, loader, options);
      return of(value instanceof Uncached ? value.value : value);
    } catch (error) {
      if (error instanceof HandlerFailure) throw error.error;
      if (handler.outcome !== undefined) return from(handler.outcome);
      this.logger.warn(`cache failed for ${label()}, serving uncached: ${(error as Error).message}`);
      return next.handle();
    }
  }

  /** `@CachePut` / `@CacheEvict`: run after the handler succeeds, with `[...args, result]`. */
  private afterWrites(plan: HandlerPlan, next: CallHandler, args: unknown[], label: () => string, defaultNamespace: string) {
    const { put, evict } = plan;
    return next.handle().pipe(
      mergeMap(async (result) => {
        const namespace = (name?: string) => this.cache.namespace(name ?? defaultNamespace);
        try {
          if (put) await putFor(namespace(put.namespace), put, args, result);
          if (evict) await evictFor(namespace(evict.namespace), evict, [...args, result]);
        } catch (error) {
          this.logger.warn(`cache update after ${label()} failed: ${(error as Error).message}`);
        }
        return result;
      }),
    );
  }

  /** The handler's plan: its decorators read on its first request. */
  private planOf(context: ExecutionContext): HandlerPlan {
    const type = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.plans.get(type);
    if (!byHandler) this.plans.set(type, (byHandler = new WeakMap()));
    let plan = byHandler.get(handler);
    if (!plan) byHandler.set(handler, (plan = this.readPlan(context)));
    return plan;
  }

  private readPlan(context: ExecutionContext): HandlerPlan {
    const type = context.getClass();
    const handler = context.getHandler();
    const targets = [handler, type];
    const cacheable = this.reflector.getAllAndOverride<CacheableOptions | undefined>(CACHEABLE_METADATA, targets);
    const version = this.reflector.getAllAndOverride<unknown>(VERSION_METADATA, targets);
    return {
      put: this.reflector.getAllAndOverride<CachePutOptions | undefined>(CACHE_PUT_METADATA, targets),
      evict: this.reflector.getAllAndOverride<CacheEvictOptions | undefined>(CACHE_EVICT_METADATA, targets),
      cacheable,
      respondsItself: respondsItself(type, handler.name) || Boolean(this.reflector.get<unknown>(SSE_METADATA, handler)),
      route: `${type.name}.${handler.name}${version === undefined ? '' : `@${keyPart(canonical(version))}`}`,
      varyHeaders: this.varyHeadersOf(cacheable ?? {}),
    };
  }

  /** GET and HEAD by default. */
  protected isRequestCacheable(request: CacheableRequest, options: CacheableOptions): boolean {
    const methods = options.methods ?? DEFAULT_METHODS;
    return methods.includes(request.method.toUpperCase());
  }

  /**
   * The cache key (the principal is appended by the caller). Default: a format version, the
   * method, the handler (controller, method, declared version), the host params of
   * `@Controller({ host })` (and the hostname with `http.keyByHost`), the vary headers, the path
   * params and the query, each value typed (a string never equals an array); the same on
   * Express and Fastify.
   */
  protected trackBy(request: CacheableRequest, options: CacheableOptions, context?: ExecutionContext): string | undefined {
    if (typeof options.key === 'function') return options.key(request);
    if (typeof options.key === 'string') return options.key;
    return this.defaultKey(request, options, context);
  }

  /** Who is asking: `http.principal`, else the user a guard set (`id`, `sub`, else all of it), else the credentials. */
  protected principalOf(request: CacheableRequest): string | undefined {
    const custom = this.config.http.principal?.(request);
    if (custom !== undefined) return `p:${keyPart(custom)}`;
    const user = request.user;
    if (user !== undefined && user !== null) {
      const id = typeof user === 'object' ? ((user as { id?: unknown }).id ?? (user as { sub?: unknown }).sub) : user;
      if (typeof id === 'string' || typeof id === 'number' || typeof id === 'bigint') return `id:${keyPart(String(id))}`;
      return `u:${digest(canonical(user))}`;
    }
    const credentials = [...this.config.http.credentialHeaders.map((name) => header(request, name)), clientCertificate(request) ?? ''];
    return `h:${digest(credentials.join('\n'))}`;
  }

  /** Credential headers, a user set by a guard, or a client certificate: when unsure, do not share. */
  protected hasCredentials(request: CacheableRequest): boolean {
    if (request.user !== undefined && request.user !== null) return true;
    if (this.config.http.credentialHeaders.some((name) => header(request, name) !== '')) return true;
    return clientCertificate(request) !== undefined;
  }

  private defaultKey(request: CacheableRequest, options: CacheableOptions, context?: ExecutionContext): string {
    // A HEAD is answered from the GET's entry (RFC 9111 section 4.3.5).
    const method = request.method.toUpperCase() === 'HEAD' ? 'GET' : request.method.toUpperCase();
    const plan = context && this.planOf(context);
    const parts = [HTTP_KEY_FORMAT, method, plan ? plan.route : keyPart(request.url.split('?')[0])];
    parts.push(canonicalPairs(request.hosts ?? {}));
    if (this.config.http.keyByHost) parts.push(keyPart((request.hostname ?? '').replace(/:\d+$/, '').toLowerCase()));
    // The plan's list when these are the handler's own options (a subclass may pass others).
    const vary = plan?.cacheable === options ? plan.varyHeaders : this.varyHeadersOf(options);
    if (vary.length) parts.push(canonicalPairs(Object.fromEntries(vary.map((name) => [name, header(request, name)]))));
    parts.push(canonicalPairs(request.params ?? {}), canonicalPairs(request.query ?? {}));
    return parts.join('|');
  }

  /** The request headers a key holds: the module's, then the route's (lower case). */
  private varyHeadersOf(options: CacheableOptions): string[] {
    return [...this.config.http.varyHeaders, ...(options.varyHeaders ?? []).map((name) => name.toLowerCase())];
  }

  /** The message pattern of an RPC handler, as `@MessagePattern`/`@EventPattern` declared it. */
  private patternOf(context: ExecutionContext): string {
    const patterns: unknown = Reflect.getMetadata(MICROSERVICE_PATTERN_METADATA, context.getHandler());
    const pattern = Array.isArray(patterns) ? patterns[0] : patterns;
    if (pattern === undefined) return `${context.getClass().name}.${context.getHandler().name}`;
    return typeof pattern === 'string' ? keyPart(pattern) : canonical(pattern);
  }

  private warnOnce(handler: string, reason: string): void {
    const id = `${handler}:${reason}`;
    if (this.warned.has(id) || this.warned.size > 1_000) return;
    this.warned.add(id);
    this.logger.warn(`${handler}: response not cached: ${reason}`);
  }
}

/** The stored form of a miss: the body itself, or a record when headers must be replayed with it. */
function withRepresentation(response: unknown, body: unknown): unknown {
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const value = getResponseHeader(response, name);
    if (value !== undefined) headers[name] = value;
  }
  if (Object.keys(headers).length === 0 && !isResponseRecord(body)) return body;
  const record: ResponseRecord = { [RESPONSE_MARK]: 1, h: headers, b: body };
  return record;
}

function notFoundRecord(error: HttpException): ResponseRecord {
  return { [RESPONSE_MARK]: 1, s: HttpStatus.NOT_FOUND, b: error.getResponse() };
}

/** The body of a stored response, its headers set again; a cached 404 is thrown with its body. */
function replay(response: unknown, value: unknown): unknown {
  if (value === null) throw new NotFoundException(); // a "not found" stored by a service or an earlier version
  if (!isResponseRecord(value)) return value;
  if (value.s === HttpStatus.NOT_FOUND) throw new HttpException(value.b as string | Record<string, unknown>, HttpStatus.NOT_FOUND);
  for (const [name, headerValue] of Object.entries(value.h ?? {})) setResponseHeader(response, name, headerValue);
  return value.b;
}

/** `@Res()` or `@Next()` without `passthrough`: Nest leaves sending to the handler. */
function respondsItself(type: Type, name: string): boolean {
  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, type, name) ?? {}) as Record<string, unknown>;
  const takesResponse = Object.keys(params).some((id) => {
    const paramType = Number(id.split(':')[0]);
    return paramType === RESPONSE_PARAM || paramType === NEXT_PARAM;
  });
  return takesResponse && Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, type, name) !== true;
}

function isNotFound(error: unknown): boolean {
  return error instanceof HttpException && error.getStatus() === HttpStatus.NOT_FOUND;
}

function header(request: CacheableRequest, name: string): string {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** The SHA-256 fingerprint of a verified TLS client certificate, if the request came with one. */
function clientCertificate(request: CacheableRequest): string | undefined {
  const socket = ((request as { raw?: { socket?: unknown } }).raw?.socket ?? (request as { socket?: unknown }).socket) as
    { authorized?: boolean; getPeerCertificate?: () => { fingerprint256?: string } | undefined } | undefined;
  if (typeof socket?.getPeerCertificate !== 'function') return undefined;
  return socket.getPeerCertificate()?.fingerprint256 || (socket.authorized ? 'authorized' : undefined);
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 32);
}
