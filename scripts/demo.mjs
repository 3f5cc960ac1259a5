#!/usr/bin/env node
// `npm run demo`: users-api and the write-behind worker from dist/, against the local PostgreSQL
// and Redis, in one terminal. Each output line is prefixed with its app; Ctrl-C stops both.
//
// Environment: .env.example's defaults, overridden by the shell (PORT=3010 npm run demo).
// Builds first when dist/ is missing. Node's standard library only.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const APPS = [
  { name: 'users-api', main: 'dist/apps/users-api/main.js', portVar: 'PORT', color: 36 },
  { name: 'worker', main: 'dist/apps/worker/main.js', portVar: 'WORKER_PORT', color: 35 },
];
const BUILT = [...APPS.map((app) => app.main), 'libs/cache/dist/index.js', 'libs/users-domain/dist/index.js'];
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const width = Math.max(...APPS.map((app) => app.name.length));
const label = (name, color) => {
  const text = `${name.padEnd(width)} |`;
  return useColor ? `\x1b[${color}m${text}\x1b[0m` : text;
};
const say = (line) => process.stdout.write(`${label('demo', 33)} ${line}\n`);

/** KEY=VALUE lines of .env.example; empty values mean "unset" there, so they are left out. */
function envExampleDefaults() {
  const file = resolve(root, '.env.example');
  if (!existsSync(file)) return {};
  const defaults = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match && match[2].trim() !== '') defaults[match[1]] = match[2].trim();
  }
  return defaults;
}

function reachable(url, defaultPort) {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || defaultPort) });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(false));
  });
}

async function checkServices(env) {
  const targets = [
    ['PostgreSQL', 'DATABASE_URL', 5432],
    ['Redis', 'REDIS_URL', 6379],
    ['queue Redis', 'QUEUE_REDIS_URL', 6379],
  ].filter(([, variable]) => env[variable]);
  const missing = [];
  for (const [name, variable, port] of targets) {
    let host;
    try {
      host = new URL(env[variable]).host;
    } catch {
      missing.push(`${variable} is not a URL`);
      continue;
    }
    if (!(await reachable(env[variable], port))) missing.push(`${name} at ${host} (${variable})`);
  }
  if (missing.length) {
    say(`cannot start: ${missing.join(', ')} did not answer. Start them, or set the variables (see .env.example).`);
    process.exit(1);
  }
}

function buildIfMissing() {
  const absent = BUILT.filter((file) => !existsSync(resolve(root, file)));
  if (!absent.length) return;
  say(`${absent[0]} is missing: npm run build`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    say('build failed');
    process.exit(result.status ?? 1);
  }
}

const children = new Map();
let stopping = false;

function start(app, env) {
  // A process group of its own: Ctrl-C reaches only this script, which stops the apps in order.
  const child = spawn(process.execPath, [app.main], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const prefix = label(app.name, app.color);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix} ${line}\n`));
  }
  child.on('exit', (code, signal) => {
    children.delete(app.name);
    if (stopping) return;
    say(`${app.name} exited (${signal ?? `code ${code}`}); stopping the demo`);
    void stop(1);
  });
  children.set(app.name, child);
  return child;
}

async function waitForLive(app, port, child) {
  const url = `http://127.0.0.1:${port}/health/live`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null || stopping) return false;
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  say(`${app.name} did not answer ${url} in ${START_TIMEOUT_MS / 1000} s`);
  return false;
}

async function stop(exitCode) {
  if (stopping) return;
  stopping = true;
  const running = [...children.values()];
  if (running.length) say('stopping users-api and worker…');
  await Promise.all(
    running.map(
      (child) =>
        new Promise((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  process.exit(exitCode);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGHUP', () => void stop(0));

const env = { ...envExampleDefaults(), ...process.env };
env.PORT ||= '3000';
env.WORKER_PORT ||= '3001';
await checkServices(env);
buildIfMissing();

const [api, worker] = APPS;
const apiChild = start(api, env);
// The worker starts once users-api is live: users-api runs the migrations (as in docker-compose.yml).
if (!(await waitForLive(api, env.PORT, apiChild))) await stop(1);
if (!stopping) {
  const workerChild = start(worker, env);
  if (!(await waitForLive(worker, env.WORKER_PORT, workerChild))) await stop(1);
}
if (!stopping) {
  say(`users-api http://127.0.0.1:${env.PORT}  (metrics /metrics, stats /cache/stats)`);
  say(`worker    http://127.0.0.1:${env.WORKER_PORT}  (health /health/ready, metrics /metrics)`);
  say(`drive it: npm run demo:traffic -- --url http://127.0.0.1:${env.PORT}   Ctrl-C stops both`);
}
