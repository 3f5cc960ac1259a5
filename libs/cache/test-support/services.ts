import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { type Redis } from 'ioredis';
import pg from 'pg';
import { escapeGlob } from '../src/keys/key-part.js';

// The services every spec talks to, and keys and databases of its own on them. The library's specs
// import this file; the root test/support/services.ts re-exports it for the e2e specs and benches.

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A key prefix no other test file (or run) shares, so spec files can run in parallel. */
export function uniquePrefix(label: string): string {
  return `t:${label}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix` (the client stays open). */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const stream = redis.scanStream({ match: `${escapeGlob(prefix)}*`, count: 1000 });
  for await (const keys of stream as AsyncIterable<string[]>) {
    if (keys.length) await redis.unlink(...keys);
  }
}

/** A fresh PostgreSQL database for one spec file; returns its URL and a function that drops it. */
export async function createTestDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `t_${label.replace(/\W/g, '_')}_${randomBytes(3).toString('hex')}`.toLowerCase();
  const admin = new pg.Client({ connectionString: withDatabase(DATABASE_URL, 'postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  return {
    url: withDatabase(DATABASE_URL, name),
    drop: async () => {
      const client = new pg.Client({ connectionString: withDatabase(DATABASE_URL, 'postgres') });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}
