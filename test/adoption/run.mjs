#!/usr/bin/env node
// Adoption suite: tests @cachekit/cache the way an outside user meets it. The library is packed
// into a tarball, installed with plain `npm install` into a scratch Nest app outside the workspace
// (so no workspace symlink, tsconfig `paths` or hoisted dev dependency can hide a packaging bug),
// compiled with tsc in strict mode and run with `node --test` against the real Redis.
//
//   node test/adoption/run.mjs            # ioredis 5 and 6
//   ADOPTION_IOREDIS=6 node test/adoption/run.mjs
//   ADOPTION_FILTER=microservice node test/adoption/run.mjs   # only scenario files whose name contains it
//   ADOPTION_LIB_DIR=/other/checkout/libs/cache node test/adoption/run.mjs  # pack another copy of the library
//
// Installs are cached under $TMPDIR/cachekit-adoption: the third-party tree per dependency list
// ("base-*"), and base + tarball per tarball hash ("app-*"), so a second run with an unchanged
// tarball installs nothing. Node built-ins only.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const libDir = path.resolve(process.env.ADOPTION_LIB_DIR ?? path.join(repoRoot, 'libs/cache'));
const appSources = path.join(here, 'app');
const cacheRoot = path.join(os.tmpdir(), 'cachekit-adoption');
const INSTALLED_MARKER = '.adoption-install-complete';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const majors = (process.env.ADOPTION_IOREDIS ?? '5,6').split(/[\s,]+/).filter(Boolean);
const filter = process.env.ADOPTION_FILTER ?? '';
// Every key the run writes starts with this, so that cleaning up can never touch anything else.
const runPrefix = `adoption:${randomBytes(4).toString('hex')}:`;
// A hung scenario must not hold the suite: the whole `node --test` of one ioredis major is killed after this.
const TEST_RUN_TIMEOUT_MS = 150_000;

// Third-party dependencies of the scratch app. @nestjs/config 12 is the major that accepts Nest 12
// (`npm view @nestjs/config peerDependencies`: '@nestjs/common': '^11.0.0 || ^12.0.0').
// typescript follows the repository's root package.json (^6). class-transformer is the optional peer
// of @nestjs/common that ClassSerializerInterceptor loads (a scenario's app binds it globally).
function manifestFor(ioredisMajor) {
  return {
    name: 'cachekit-adoption-app',
    private: true,
    type: 'module',
    dependencies: {
      '@nestjs/common': '^12.0.0',
      '@nestjs/config': '^12.0.0',
      '@nestjs/core': '^12.0.0',
      '@nestjs/microservices': '^12.0.0',
      '@nestjs/platform-express': '^12.0.0',
      '@nestjs/platform-fastify': '^12.0.0',
      '@nestjs/terminus': '^12.0.0',
      'class-transformer': '^0.5.1',
      ioredis: `^${ioredisMajor}.0.0`,
      'reflect-metadata': '^0.2.0',
      rxjs: '^7.8.0',
    },
    devDependencies: {
      '@types/node': '^20.19.0',
      typescript: '^6.0.0',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// small helpers

const timings = [];
const failures = [];

async function step(label, fn) {
  console.log(`\n== ${label}`);
  const started = performance.now();
  try {
    return await fn();
  } finally {
    const ms = performance.now() - started;
    timings.push([label, ms]);
    console.log(`-- ${label}: ${(ms / 1000).toFixed(1)} s`);
  }
}

class StepError extends Error {}

// Commands run in their own process group (see run), so Ctrl-C reaches only this process: pass
// it on to the running command, then stop and still clean up Redis.
let currentChild;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) process.exit(130); // a second Ctrl-C: leave at once
    interrupted = signal;
    if (currentChild) killGroup(currentChild);
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group has already exited
  }
}

/** Runs a command; output streams to the terminal unless `capture` is set. Resolves with the exit code. */
function run(command, args, { cwd, env, capture = false, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
      // Own process group, so that a timeout can kill the command and everything it started.
      detached: true,
    });
    currentChild = child;
    let output = '';
    if (capture) {
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
    }
    let timedOut = false;
    const timer = timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          killGroup(child);
        }, timeoutMs)
      : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      currentChild = undefined;
      if (interrupted) return reject(new StepError(`interrupted (${interrupted})`));
      resolve({ code: timedOut ? 'timeout' : (code ?? signal), output });
    });
  });
}

async function mustRun(what, command, args, options) {
  const { code, output } = await run(command, args, options);
  if (code !== 0) {
    if (output) process.stderr.write(output);
    throw new StepError(`${what} failed (\`${command} ${args.join(' ')}\` in ${options?.cwd ?? process.cwd()} exited with ${code})`);
  }
  return output;
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

function copyDir(from, to) {
  // verbatimSymlinks keeps node_modules/.bin links relative, so a copied tree stays self-contained.
  fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

/** The entry names of a .tgz (ustar, with the pax long-path records node-tar writes). */
function tarEntries(tgzPath) {
  const tar = zlib.gunzipSync(fs.readFileSync(tgzPath));
  const names = [];
  let paxPath;
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start, length) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const body = tar.subarray(offset + 512, offset + 512 + size).toString('utf8');
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body)?.[1];
    } else if (type !== 'g') {
      const prefix = field(345, 155);
      names.push(paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)));
      paxPath = undefined;
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// a minimal Redis client (RESP2), for the pre-flight PING and the clean-up: the runner has no deps

function redisCommands(url) {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) });
  socket.setTimeout(5_000, () => socket.destroy(new Error(`Redis at ${hostname}:${port || 6379} did not answer within 5 s`)));
  let buffer = Buffer.alloc(0);
  const waiting = [];
  let failed;
  const failAll = (error) => {
    failed ??= error;
    while (waiting.length) waiting.shift().reject(failed);
  };
  socket.on('error', failAll);
  socket.on('close', () => failAll(new Error('Redis connection closed')));

  // Returns [value, nextOffset], or undefined when the buffer does not hold a whole reply yet.
  const parse = (offset) => {
    const lineEnd = buffer.indexOf('\r\n', offset);
    if (lineEnd < 0) return undefined;
    const kind = String.fromCharCode(buffer[offset]);
    const line = buffer.toString('utf8', offset + 1, lineEnd);
    const next = lineEnd + 2;
    if (kind === '+') return [line, next];
    if (kind === '-') return [new Error(line), next];
    if (kind === ':') return [Number(line), next];
    if (kind === '$') {
      const length = Number(line);
      if (length < 0) return [null, next];
      if (buffer.length < next + length + 2) return undefined;
      return [buffer.toString('utf8', next, next + length), next + length + 2];
    }
    if (kind === '*') {
      const count = Number(line);
      const items = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(at);
        if (!item) return undefined;
        items.push(item[0]);
        at = item[1];
      }
      return [items, at];
    }
    throw new Error(`unexpected RESP reply type ${JSON.stringify(kind)}`);
  };
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (let reply = parse(0); reply && waiting.length; reply = parse(0)) {
      buffer = buffer.subarray(reply[1]);
      const { resolve, reject } = waiting.shift();
      if (reply[0] instanceof Error) reject(reply[0]);
      else resolve(reply[0]);
    }
  });
  return {
    send(...args) {
      if (failed) return Promise.reject(failed);
      const parts = args.map(String);
      socket.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    close: () => socket.end(),
  };
}

async function deleteKeysWithPrefix(prefix) {
  const redis = redisCommands(REDIS_URL);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.send('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) deleted += await redis.send('UNLINK', ...keys);
      cursor = nextCursor;
    } while (cursor !== '0');
  } finally {
    redis.close();
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// the steps

async function packLibrary() {
  const packDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cachekit-pack-'));
  // `prepack` builds the library (tsc -b tsconfig.lib.json), so this is also the build step.
  await mustRun('npm pack', 'npm', ['pack', '--loglevel=warn', '--pack-destination', packDir], { cwd: libDir });
  const tarballs = fs.readdirSync(packDir).filter((name) => name.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new StepError(`npm pack left ${tarballs.length} tarballs in ${packDir}`);
  const tarball = path.join(packDir, tarballs[0]);
  const entries = tarEntries(tarball);

  const problems = [];
  for (const required of ['package/package.json', 'package/dist/index.js', 'package/dist/index.d.ts']) {
    if (!entries.includes(required)) problems.push(`missing ${required}`);
  }
  for (const name of entries) {
    if (/\.spec\./.test(name)) problems.push(`ships a spec file: ${name}`);
    if (name.startsWith('package/src/')) problems.push(`ships sources: ${name}`);
  }
  if (problems.length) {
    throw new StepError(`the tarball ${tarballs[0]} is not what users should get:\n  ${problems.join('\n  ')}`);
  }

  // Every `exports` target must be in the tarball, or that entry point fails for every user.
  // Reported as a failure, but the scenarios still run: they show what else works.
  const manifest = JSON.parse(fs.readFileSync(path.join(libDir, 'package.json'), 'utf8'));
  const targets = [];
  const collect = (node) => {
    if (typeof node === 'string') targets.push(node);
    else if (node && typeof node === 'object') Object.values(node).forEach(collect);
  };
  collect(manifest.exports);
  const missingTargets = targets.filter((target) => !entries.includes(path.posix.join('package', target)));
  for (const target of missingTargets) {
    failures.push(`tarball: the "exports" target ${target} is not in the package`);
    console.error(`!! the "exports" target ${target} is not in the tarball`);
  }

  const digest = sha256(fs.readFileSync(tarball));
  console.log(`${tarballs[0]}: ${entries.length} entries, sha256 ${digest.slice(0, 16)}…`);
  return { tarball, fileName: tarballs[0], digest, packDir };
}

/** Runs `npm install <installArgs>` in a dir made by `prepare(dir)` and checks the tree, unless `finalDir` is already complete. */
async function installOnce(finalDir, label, prepare, installArgs) {
  if (isComplete(finalDir)) {
    console.log(`${label}: reusing ${finalDir}`);
    return;
  }
  // Build in a temporary sibling and rename at the end: a half-done install never looks complete.
  const workDir = `${finalDir}.tmp-${process.pid}`;
  fs.rmSync(workDir, { recursive: true, force: true });
  prepare(workDir);
  // Plain `npm install`: a .npmrc that turns on legacy-peer-deps or force must not hide peer conflicts.
  await mustRun(`${label}: npm install`, 'npm', ['install', '--no-audit', '--no-fund', ...installArgs], {
    cwd: workDir,
    env: { npm_config_legacy_peer_deps: 'false', npm_config_force: 'false', npm_config_strict_peer_deps: 'false' },
  });
  // A valid tree: every dependency and peer dependency satisfied, nothing extraneous or invalid.
  const { code, output } = await run('npm', ['ls', '--all'], { cwd: workDir, capture: true });
  if (code !== 0) {
    process.stderr.write(output);
    throw new StepError(`${label}: \`npm ls --all\` exited with ${code}: the installed tree is not valid`);
  }
  fs.writeFileSync(path.join(workDir, INSTALLED_MARKER), new Date().toISOString() + '\n');
  if (isComplete(finalDir)) {
    // Another run of the suite finished the same install meanwhile, and may be using it.
    fs.rmSync(workDir, { recursive: true, force: true });
    return;
  }
  fs.rmSync(finalDir, { recursive: true, force: true });
  fs.renameSync(workDir, finalDir);
}

function isComplete(dir) {
  const marker = path.join(dir, INSTALLED_MARKER);
  if (!fs.existsSync(marker)) return false;
  // The marker's mtime says when the dir was last used (see pruneUnused).
  const now = new Date();
  fs.utimesSync(marker, now, now);
  return true;
}

/**
 * Removes cached installs (older tarballs, older dependency lists) and leftovers of killed runs
 * that no run has used for a day. Not sooner: another run of the suite may be using them.
 */
function pruneUnused() {
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const name of fs.readdirSync(cacheRoot)) {
    const dir = path.join(cacheRoot, name);
    const marker = path.join(dir, INSTALLED_MARKER);
    const lastUsed = fs.statSync(fs.existsSync(marker) ? marker : dir).mtimeMs;
    if (lastUsed < dayAgo) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function prepareApp(major, pack) {
  const manifest = manifestFor(major);
  const depsKey = JSON.stringify(manifest);
  const baseDir = path.join(cacheRoot, `base-ioredis${major}-${sha256(depsKey).slice(0, 12)}`);
  const appDir = path.join(cacheRoot, `app-ioredis${major}-${sha256(`${pack.digest}\n${major}\n${depsKey}`).slice(0, 12)}`);

  if (isComplete(appDir)) {
    console.log(`\n== ioredis ${major}: install skipped, ${appDir} already holds this tarball`);
    return appDir;
  }
  await step(`ioredis ${major}: install third-party dependencies`, () =>
    installOnce(
      baseDir,
      'base',
      (dir) => {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
      },
      [],
    ),
  );
  // `npm install <file>.tgz` on top of a copy of the base: the tarball is extracted into
  // node_modules like any registry package (no link), and its own dependencies come from the registry.
  await step(`ioredis ${major}: install the tarball`, () =>
    installOnce(
      appDir,
      'app',
      (dir) => {
        copyDir(baseDir, dir);
        fs.rmSync(path.join(dir, INSTALLED_MARKER));
        fs.copyFileSync(pack.tarball, path.join(dir, pack.fileName));
      },
      [`./${pack.fileName}`],
    ),
  );
  return appDir;
}

async function compileAndTest(major, appDir) {
  // Sources go to a directory of this run's own inside the install (Node and tsc find
  // node_modules in the parent), so that runs of the suite sharing an install never mix sources.
  const runsDir = path.join(appDir, 'runs');
  const workDir = path.join(runsDir, runPrefix.split(':')[1]);
  pruneOldRuns(runsDir);
  copyDir(appSources, workDir);
  let passed = true;

  // tsc emits even when it reports errors (noEmitOnError is off): a type error is a failure of
  // the suite, but the scenarios still run, so one missing export does not hide everything else.
  await step(`ioredis ${major}: tsc (strict)`, async () => {
    const { code } = await run('npx', ['--no', '--', 'tsc', '-p', 'tsconfig.json'], { cwd: workDir });
    if (code !== 0) {
      passed = false;
      failures.push(`ioredis ${major}: tsc reported type errors (exit ${code}), see above`);
    }
  });

  const distDir = path.join(workDir, 'dist');
  const files = (fs.existsSync(distDir) ? fs.readdirSync(distDir, { recursive: true }) : [])
    .filter((name) => name.endsWith('.test.mjs') && name.includes(filter))
    .sort()
    .map((name) => path.join('dist', name));
  if (!files.length) throw new StepError(`ioredis ${major}: no compiled scenario files in ${distDir}`);

  await step(`ioredis ${major}: scenarios (${files.length} files)`, async () => {
    const { code } = await run(
      process.execPath,
      // --test-force-exit: a scenario that leaves a handle open fails its own assertions rather
      // than keeping the file's process (and the suite) alive. Source maps: stacks point at the .mts.
      ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-force-exit', ...files],
      {
        cwd: workDir,
        env: {
          REDIS_URL,
          ADOPTION_KEY_PREFIX: `${runPrefix}io${major}:`,
          // Nest colours its logs unless told not to; escape codes only clutter a CI log.
          ...(process.stdout.isTTY ? {} : { NO_COLOR: '1' }),
        },
        timeoutMs: TEST_RUN_TIMEOUT_MS,
      },
    );
    if (code !== 0) {
      passed = false;
      failures.push(
        code === 'timeout'
          ? `ioredis ${major}: scenarios killed after ${TEST_RUN_TIMEOUT_MS / 1000} s`
          : `ioredis ${major}: scenarios failed (node --test exited with ${code}), see "failing tests" above`,
      );
    }
  });
  // Kept when something failed, to look at the compiled scenarios; pruned after a day.
  if (passed) fs.rmSync(workDir, { recursive: true, force: true });
  else console.log(`(compiled scenarios kept in ${workDir})`);
}

function pruneOldRuns(runsDir) {
  if (!fs.existsSync(runsDir)) return;
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const name of fs.readdirSync(runsDir)) {
    const dir = path.join(runsDir, name);
    if (fs.statSync(dir).mtimeMs < dayAgo) fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
let packDir;
try {
  await step('Redis answers', async () => {
    const redis = redisCommands(REDIS_URL);
    try {
      const pong = await redis.send('PING');
      if (pong !== 'PONG') throw new StepError(`Redis at ${REDIS_URL} answered ${pong} to PING`);
    } catch (error) {
      throw new StepError(`the adoption suite needs Redis at ${REDIS_URL}: ${error.message}`);
    } finally {
      redis.close();
    }
  });
  fs.mkdirSync(cacheRoot, { recursive: true });
  pruneUnused();
  const pack = await step('build and pack @cachekit/cache', packLibrary);
  packDir = pack.packDir;
  for (const major of majors) {
    if (!/^\d+$/.test(major)) throw new StepError(`ADOPTION_IOREDIS must list majors such as "5,6"; got ${major}`);
    const appDir = await prepareApp(major, pack);
    await compileAndTest(major, appDir);
  }
} catch (error) {
  failures.push(error instanceof StepError ? error.message : (error.stack ?? String(error)));
} finally {
  if (packDir) fs.rmSync(packDir, { recursive: true, force: true });
  try {
    await step('clean up Redis keys', async () => {
      const deleted = await deleteKeysWithPrefix(runPrefix);
      console.log(`deleted ${deleted} keys under ${runPrefix}`);
    });
  } catch (error) {
    failures.push(`clean-up of ${runPrefix}* failed: ${error.message}`);
  }
}

console.log('\n== timings');
for (const [label, ms] of timings) console.log(`${(ms / 1000).toFixed(1).padStart(7)} s  ${label}`);
console.log(`${((performance.now() - started) / 1000).toFixed(1).padStart(7)} s  total`);
if (failures.length) {
  console.error(`\nadoption suite FAILED:\n- ${failures.join('\n- ')}`);
  process.exitCode = 1;
} else {
  console.log('\nadoption suite passed');
}
