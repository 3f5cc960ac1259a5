import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  NotFoundException,
  Optional,
  UnauthorizedException,
} from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { CACHE_ADMIN_TOKEN } from '../cache.constants.js';
import { setResponseHeader } from '../interceptors/http-response.js';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Admin routes (cache invalidation, dead letters) need `Authorization: Bearer <token>`, the token
 * an app provides under `CACHE_ADMIN_TOKEN` (users-api and the worker: `$CACHE_ADMIN_TOKEN`). Without a configured token they
 * are off: 404, as for a route that does not exist. The token is compared as SHA-256 digests in
 * constant time, so neither its content nor its length leaks through timing.
 */
@Injectable()
export class CacheAdminGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(@Optional() @Inject(CACHE_ADMIN_TOKEN) token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    // Express or Fastify: only what both requests have.
    const request = http.getRequest<{ method: string; url: string; headers: Record<string, string | string[] | undefined> }>();
    if (!this.expected) {
      throw new NotFoundException({
        statusCode: 404,
        error: 'Not Found',
        message: `Cannot ${request.method} ${request.url.split('?')[0]}`,
      });
    }
    const header = request.headers.authorization;
    const presented = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header)?.[1] : undefined;
    if (presented !== undefined && timingSafeEqual(digest(presented), this.expected)) return true;
    setResponseHeader(http.getResponse(), 'WWW-Authenticate', 'Bearer realm="cache-admin"');
    throw new UnauthorizedException({
      statusCode: 401,
      error: 'Unauthorized',
      message: header === undefined ? 'missing bearer token' : 'invalid bearer token',
    });
  }
}
