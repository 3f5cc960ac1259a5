import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { createTestDatabase, dropPrefix, freePort, REDIS_URL, uniquePrefix } from './support/services.js';

const MAIN = resolve('dist/apps/users-api/main.js');

async function waitForHttp(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`users-api exited with ${child.exitCode}:\n${output()}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`users-api did not answer in 20 s:\n${output()}`);
}

describe('the built users-api, started with plain node', () => {
  it('resolves libs/cache from dist and serves GET /users/:id with X-Cache MISS then HIT', async () => {
    expect(existsSync(MAIN)).toBe(true); // `npm test` builds first (pretest)
    const database = await createTestDatabase('built_app');
    const prefix = uniquePrefix('built');
    const port = await freePort();
    let output = '';
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), DATABASE_URL: database.url, REDIS_URL, CACHE_KEY_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${base}/users?limit=1`, child, () => output);
      const created = await fetch(`${base}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'built@example.com', name: 'Built' }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: number };
      const miss = await fetch(`${base}/users/${id}`);
      expect(miss.status).toBe(200);
      expect(miss.headers.get('x-cache')).toBe('MISS');
      const hit = await fetch(`${base}/users/${id}`);
      expect(hit.headers.get('x-cache')).toBe('HIT');
      expect(await hit.json()).toMatchObject({ id, email: 'built@example.com', name: 'Built', version: 1 });
    } finally {
      const exited = new Promise<string>((done) => child.once('exit', (code, signal) => done(signal ?? `code ${code}`)));
      child.kill('SIGTERM');
      // Nest runs its shutdown hooks, then re-raises the signal.
      expect(await exited).toBe('SIGTERM');
      expect(output).not.toMatch(/ERROR/);
      const redis = new Redis(REDIS_URL);
      await dropPrefix(redis, prefix);
      await redis.quit();
      await database.drop();
    }
  });
});
