// Shared plumbing of the scenarios: key prefixes, starting and closing apps, HTTP with a deadline.
import 'reflect-metadata';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every key of the run starts with the runner's prefix (it deletes them all at the end). */
const RUN_PREFIX = process.env.ADOPTION_KEY_PREFIX ?? `adoption:local${process.pid}:`;

/** One prefix per scenario file, so that files never see each other's entries. */
export const keyPrefixFor = (scenario: string): string => `${RUN_PREFIX}${scenario}:`;

/** A hang must fail fast with a clear message, not run into the suite's time limit. */
export const REQUEST_TIMEOUT_MS = 3_000;
const CLOSE_TIMEOUT_MS = 5_000;

export type HttpPlatform = 'express' | 'fastify';

export interface RunningApp {
  app: INestApplication;
  url: string;
}

/**
 * Creates, starts and listens on an ephemeral loopback port. `configure` runs before `listen`,
 * for what must be set up before the routes are registered (`app.enableVersioning(...)`).
 */
export async function startHttpApp(
  module: Type,
  platform: HttpPlatform = 'express',
  configure?: (app: INestApplication) => unknown,
): Promise<RunningApp> {
  // abortOnError: false, or a start-up error would call process.exit() instead of rejecting.
  const options = { logger: ['error' as const], abortOnError: false };
  let app: INestApplication;
  if (platform === 'fastify') {
    // Loaded only by the files that use it.
    const { FastifyAdapter } = await import('@nestjs/platform-fastify');
    app = await NestFactory.create<NestFastifyApplication>(module, new FastifyAdapter(), options);
  } else {
    app = await NestFactory.create(module, options);
  }
  try {
    await configure?.(app);
    await app.listen(0, '127.0.0.1');
    return { app, url: await app.getUrl() };
  } catch (error) {
    await closeApp(app);
    throw error;
  }
}

/** Bounded `close()`: a close that hangs is reported as a failure of its own. */
export async function closeApp(app: { close(): Promise<unknown> } | undefined): Promise<void> {
  if (!app) return;
  await deadline(app.close(), CLOSE_TIMEOUT_MS, 'app.close()');
}

export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Answer {
  status: number;
  /** The `X-Cache` header, or `undefined` when the response has none. */
  xCache: string | undefined;
  contentType: string;
  /** All response headers (`headers.getSetCookie()` for the cookies). */
  headers: Headers;
  text: string;
  json<T = any>(): T;
}

export interface RequestOptions extends RequestInit {
  /** A deadline shorter than `REQUEST_TIMEOUT_MS`, for requests that are expected to risk a hang. */
  timeoutMs?: number;
  /**
   * The `Host` header (`a.example.com`), for routes of `@Controller({ host })`. fetch() does not
   * let one set it, so such a request goes through `node:http`.
   */
  host?: string;
}

export async function request(url: string, init: RequestOptions = {}): Promise<Answer> {
  const { timeoutMs = REQUEST_TIMEOUT_MS, host, ...fetchInit } = init;
  const method = fetchInit.method ?? 'GET';
  const label = host ? `${method} ${url} (Host: ${host})` : `${method} ${url}`;
  let status: number;
  let headers: Headers;
  let text: string;
  try {
    if (host !== undefined) {
      ({ status, headers, text } = await requestWithHost(url, host, fetchInit, timeoutMs));
    } else {
      const response = await fetch(url, { ...fetchInit, signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
      ({ status, headers } = response);
    }
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') {
      throw new Error(`${label} got no answer within ${timeoutMs} ms (the request hangs)`);
    }
    throw new Error(`${label} failed: ${(error as Error).message}`, { cause: error });
  }
  return {
    status,
    xCache: headers.get('x-cache') ?? undefined,
    contentType: headers.get('content-type') ?? '',
    headers,
    text,
    json: () => {
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${label} answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
      }
    },
  };
}

/** One request through `node:http`, which sends the `Host` header it is given. */
function requestWithHost(
  url: string,
  host: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<{ status: number; headers: Headers; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = { ...Object.fromEntries(new Headers(init.headers)), host };
    const req = http.request(url, { method: init.method ?? 'GET', headers: outgoing }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const headers = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({ status: res.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => {
      const timeout = new Error(`no answer within ${timeoutMs} ms`);
      timeout.name = 'TimeoutError';
      req.destroy(timeout);
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    if (typeof init.body === 'string') req.write(init.body);
    req.end();
  });
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} (waited ${timeoutMs} ms)`);
    await sleep(25);
  }
}

/**
 * Runs a start-up that is expected to fail and returns its error. An app that starts anyway is
 * closed, and the scenario fails with `expectation` in its message.
 */
export async function startupError(start: () => Promise<INestApplication>, expectation: string): Promise<Error> {
  let app: INestApplication | undefined;
  try {
    app = await start();
    await app.init();
  } catch (error) {
    await closeApp(app).catch(() => undefined);
    return error as Error;
  }
  await closeApp(app);
  throw new Error(`the app started, but ${expectation}`);
}

/**
 * What `@Res()` injects, as far as the scenarios use it: an Express `Response` or a Fastify
 * `FastifyReply`. Handlers shared by both apps of a file write through the helpers below.
 */
export interface PlatformResponse {
  /** Express (Node's `ServerResponse`) */
  setHeader?(name: string, value: string): unknown;
  /** Fastify */
  header?(name: string, value: string): unknown;
  /** Express */
  cookie?(name: string, value: string, options?: { httpOnly?: boolean; path?: string }): unknown;
  /** Express */
  json?(body: unknown): unknown;
  /** both */
  send(body: unknown): unknown;
}

/** `res.setHeader(...)` on Express, `reply.header(...)` on Fastify. */
export function setHeader(res: PlatformResponse, name: string, value: string): void {
  if (res.setHeader) res.setHeader(name, value);
  else if (res.header) res.header(name, value);
  else throw new Error('neither an Express response nor a Fastify reply');
}

/** `res.cookie(...)` on Express, `reply.header('set-cookie', ...)` on Fastify (no @fastify/cookie). */
export function setCookie(res: PlatformResponse, name: string, value: string): void {
  if (res.cookie) res.cookie(name, value, { httpOnly: true, path: '/' });
  else setHeader(res, 'set-cookie', `${name}=${value}; Path=/; HttpOnly`);
}

/** `return res.json(body)` on Express, `return reply.send(body)` on Fastify: both answer the response object. */
export function sendJson(res: PlatformResponse, body: unknown): unknown {
  return res.json ? res.json(body) : res.send(body);
}

/** The value of cookie `name` in the response's `Set-Cookie` headers, or `undefined`. */
export function cookieFrom(answer: Answer, name: string): string | undefined {
  for (const line of answer.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}
