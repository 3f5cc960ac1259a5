// Shared plumbing of the scenarios: key prefixes, starting and closing apps, HTTP with a deadline.
import 'reflect-metadata';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
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

/** Creates, starts and listens on an ephemeral loopback port. */
export async function startHttpApp(module: Type, platform: HttpPlatform = 'express'): Promise<RunningApp> {
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
  text: string;
  json<T = any>(): T;
}

export async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const method = init.method ?? 'GET';
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    text = await response.text();
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') {
      throw new Error(`${method} ${url} got no answer within ${REQUEST_TIMEOUT_MS} ms (the request hangs)`);
    }
    throw new Error(`${method} ${url} failed: ${(error as Error).message}`, { cause: error });
  }
  return {
    status: response.status,
    xCache: response.headers.get('x-cache') ?? undefined,
    contentType: response.headers.get('content-type') ?? '',
    text,
    json: () => {
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${method} ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
      }
    },
  };
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
