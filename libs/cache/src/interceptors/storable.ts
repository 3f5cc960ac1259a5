import { StreamableFile } from '@nestjs/common';
import { getResponseHeader, responseStatus } from './http-response.js';

/** Why a response may not be stored in a shared cache; `warn`: the route's author should hear about it once. */
export interface Refusal {
  reason: string;
  warn: boolean;
}

/**
 * The storage rules of a shared cache (RFC 9111 sections 3 and 3.5) for a handler's response,
 * read once the handler has finished: nothing that sets a cookie, says `no-store`, `no-cache`
 * or (unless the entry is per principal) `private`, varies by `*` or by a request header the key
 * does not hold, answers with a status a hit would not (anything but 200), or is a stream. `perPrincipal`: the entry is keyed by
 * the principal (`vary: 'user'`), a private cache.
 */
export function whyNotStorable(
  response: unknown,
  result: unknown,
  perPrincipal: boolean,
  keyedHeaders: readonly string[],
  expectedStatus = 200,
): Refusal | undefined {
  if (isStream(result)) return { reason: 'a stream or binary body is sent as it is read, never stored', warn: true };
  // Only the status a hit answers with (200, or 404 for a cached "not found"): a 201, 203 or 206 set at run time is not replayed.
  const status = responseStatus(response);
  if (status !== undefined && expectedStatus === 200 && status !== 200) return { reason: `status ${status}`, warn: false };
  if (getResponseHeader(response, 'set-cookie') !== undefined || hasDeferredCookies(response))
    return { reason: 'it sets a cookie', warn: false };
  const directives = (getResponseHeader(response, 'cache-control') ?? '')
    .toLowerCase()
    .split(',')
    .map((directive) => directive.trim().split('=')[0]);
  if (directives.includes('no-store') || directives.includes('no-cache')) return { reason: 'Cache-Control forbids it', warn: false };
  if (directives.includes('private') && !perPrincipal)
    return { reason: 'Cache-Control: private, and the route is not per user', warn: false };
  const vary = (getResponseHeader(response, 'vary') ?? '')
    .toLowerCase()
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'accept-encoding'); // compression happens after the cache, on the way out
  if (vary.includes('*')) return { reason: 'Vary: *', warn: false };
  const unkeyed = vary.filter((name) => !keyedHeaders.includes(name));
  if (unkeyed.length) return { reason: `it varies by ${unkeyed.join(', ')}: add them to the route's varyHeaders`, warn: true };
  return undefined;
}

/**
 * `@fastify/cookie` keeps cookies set with `reply.setCookie()` in a map of the reply and writes the
 * `Set-Cookie` header only when the response is sent, after this check: look at that map too.
 */
function hasDeferredCookies(response: unknown): boolean {
  if (typeof response !== 'object' || response === null) return false;
  for (const symbol of Object.getOwnPropertySymbols(response)) {
    if (symbol.description !== 'fastify.reply.setCookies') continue;
    const cookies = (response as Record<symbol, unknown>)[symbol];
    if (cookies instanceof Map ? cookies.size > 0 : cookies !== undefined && cookies !== null) return true;
  }
  return false;
}

function isStream(value: unknown): boolean {
  if (value instanceof StreamableFile || value instanceof Uint8Array || value instanceof ArrayBuffer) return true;
  return typeof value === 'object' && value !== null && typeof (value as { pipe?: unknown }).pipe === 'function';
}
