/**
 * How long a change takes to become visible through two running users-api instances:
 *   1. a direct SQL `UPDATE users` (bypassing the API: only CDC, LISTEN/NOTIFY, can evict it),
 *      from its commit until GET /users/:id on instance A, on B, and on both returns the new name;
 *   2. `PUT /users/:id` on instance A, from its response until instance B returns the new name
 *      (A's eviction on the bus, and CDC, race to evict B's L1 copy).
 * Reference in the same run: the round trip of one GET /users/:id HIT, the floor of any polled
 * visibility time. Needs the built app: `npm run build`, then
 * `node --import ./bench/register.mjs bench/cdc-visibility.bench.ts`; Redis at REDIS_URL and
 * PostgreSQL at DATABASE_URL (the defaults of test/support/services.ts).
 */
import { stripVTControlCharacters } from 'node:util';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createTestDatabase, dropPrefix, freePort, REDIS_URL } from '../test/support/services.js';

const MAIN = resolve('dist/apps/users-api/main.js');
const USERS = 20;
const ROUNDS = 200;
const WARMUP_ROUNDS = 5;
const HIT_SAMPLES = 500;
/** a poll starts this long after the previous one started (or at once, if that one took longer) */
const POLL_INTERVAL_MS = 2;
/** a round that has not converged by then is a failure */
const ROUND_TIMEOUT_MS = 5_000;
const SQL_TARGET_P99_MS = 100;
const PUT_TARGET_P99_MS = 50;

interface Instance {
  name: string;
  port: number;
  child: ChildProcess;
  agent: http.Agent;
  output: string[];
}

interface Reply {
  status: number;
  cache: string | undefined;
  body: string;
}

interface User {
  id: number;
  email: string;
  name: string;
}

interface Seen {
  /** ms from the reference moment to the reply that carried the new name */
  ms: number;
  polls: number;
  /** X-Cache of that reply */
  cache: string | undefined;
}

interface Failure {
  measure: string;
  round: number;
  userId: number;
  detail: string;
}

function request(instance: Instance, method: string, path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((done, fail) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: instance.port,
        method,
        path,
        agent: instance.agent,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: ROUND_TIMEOUT_MS,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, cache: res.headers['x-cache'] as string | undefined, body: text }));
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${instance.name} timed out`)));
    req.on('error', fail);
    req.end(payload);
  });
}

async function start(name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const instance: Instance = { name, port, child, agent: new http.Agent({ keepAlive: true, maxSockets: 8 }), output: [] };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => instance.output.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => instance.output.push(chunk));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`users-api ${name} exited with ${child.exitCode}:\n${instance.output.join('')}`);
    try {
      if ((await request(instance, 'GET', '/users?limit=1')).status === 200) return instance;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`users-api ${name} did not answer in 20 s:\n${instance.output.join('')}`);
}

async function stop(instance: Instance): Promise<void> {
  instance.agent.destroy();
  if (instance.child.exitCode !== null || instance.child.signalCode !== null) return;
  const exited = new Promise<void>((done) => instance.child.once('exit', () => done()));
  instance.child.kill('SIGTERM');
  const killed = await Promise.race([exited.then(() => false), sleep(5_000).then(() => true)]);
  if (killed) {
    instance.child.kill('SIGKILL');
    await exited;
  }
}

async function getUser(instance: Instance, id: number): Promise<{ reply: Reply; name?: string }> {
  const reply = await request(instance, 'GET', `/users/${id}`);
  return { reply, name: reply.status === 200 ? (JSON.parse(reply.body) as User).name : undefined };
}

/** Polls GET /users/:id until it returns `name`; `undefined` if it does not within the round timeout. */
async function pollUntil(instance: Instance, id: number, name: string, from: number): Promise<Seen | undefined> {
  let polls = 0;
  for (;;) {
    const sent = performance.now();
    const { reply, name: seen } = await getUser(instance, id);
    polls++;
    const now = performance.now();
    if (seen === name) return { ms: now - from, polls, cache: reply.cache };
    if (now - from > ROUND_TIMEOUT_MS) return undefined;
    const wait = POLL_INTERVAL_MS - (now - sent);
    if (wait > 0) await sleep(wait);
  }
}

/** Both instances hold `user` (as a HIT) before a round starts, so that each has something to evict. */
async function warm(instances: readonly Instance[], user: User): Promise<boolean> {
  let allHits = true;
  for (const instance of instances) {
    let { reply, name } = await getUser(instance, user.id);
    if (reply.cache !== 'HIT') ({ reply, name } = await getUser(instance, user.id));
    if (reply.cache !== 'HIT' || name !== user.name) allHits = false;
  }
  return allHits;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function ms(value: number): string {
  return Number.isNaN(value) ? 'n/a' : value.toFixed(1);
}

interface Row {
  name: string;
  samples: number[];
  attempted: number;
  target?: number;
}

function table(rows: readonly Row[], reference: number): string {
  const head = [
    '| measure | converged | p50 ms | p90 ms | p99 ms | max ms | p50 in HIT round trips | target (p99) |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  const lines = rows.map((row, i) => {
    const sorted = [...row.samples].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const target =
      row.target === undefined
        ? 'reference'
        : `≤ ${row.target} ms: ${row.samples.length === row.attempted && p99 <= row.target ? 'met' : 'NOT met'}`;
    const times = i === 0 ? 'baseline' : `${(p50 / reference).toFixed(1)}×`;
    return `| ${row.name} | ${row.samples.length}/${row.attempted} | ${ms(p50)} | ${ms(percentile(sorted, 90))} | ${ms(p99)} | ${ms(sorted[sorted.length - 1] ?? Number.NaN)} | ${times} | ${target} |`;
  });
  return [...head, ...lines].join('\n');
}

function tally(values: readonly (string | undefined)[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value ?? 'none', (counts.get(value ?? 'none') ?? 0) + 1);
  return [...counts].map(([value, count]) => `${value} ${count}`).join(', ');
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error(`bench: ${MAIN} is missing; run \`npm run build\` first`);
  const database = await createTestDatabase('bench_cdc');
  const prefix = `bench:cdc:${randomBytes(4).toString('hex')}:`;
  const env = { DATABASE_URL: database.url, REDIS_URL, CACHE_KEY_PREFIX: prefix };
  const instances: Instance[] = [];
  const sql = new pg.Client({ connectionString: database.url });
  const failures: Failure[] = [];
  try {
    // One after the other: the first runs the migrations (and creates the trigger) on the fresh database.
    process.stderr.write('starting users-api A and B\n');
    instances.push(await start('A', env));
    instances.push(await start('B', env));
    const [a, b] = instances;
    await sql.connect();

    const users: User[] = [];
    for (let i = 0; i < USERS; i++) {
      const created = await request(a, 'POST', '/users', { email: `cdc-bench-${i}@example.com`, name: `user ${i}` });
      if (created.status !== 201) throw new Error(`bench: POST /users answered ${created.status}: ${created.body}`);
      users.push(JSON.parse(created.body) as User);
    }
    for (const user of users) await warm(instances, user);

    // Reference: one GET of an L1 HIT, on each instance.
    const hitTimes: number[] = [];
    for (let i = 0; i < HIT_SAMPLES; i++) {
      const instance = instances[i % 2];
      const user = users[i % USERS];
      const sent = performance.now();
      const { reply } = await getUser(instance, user.id);
      if (reply.cache === 'HIT') hitTimes.push(performance.now() - sent);
    }
    const hitP50 = percentile(
      [...hitTimes].sort((x, y) => x - y),
      50,
    );

    // 1. Direct SQL: only the CDC listeners of A and B learn about it.
    const sqlA: number[] = [];
    const sqlB: number[] = [];
    const sqlBoth: number[] = [];
    const sqlPolls: number[] = [];
    const sqlCache: (string | undefined)[] = [];
    /** by how the slower and the faster instance got the new value: the time until both saw it */
    const sqlByOutcome = new Map<string, number[]>();
    let sqlCold = 0;
    process.stderr.write(`direct SQL UPDATE: ${WARMUP_ROUNDS} warm-up + ${ROUNDS} rounds\n`);
    for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
      const user = users[(round + WARMUP_ROUNDS) % USERS];
      if (!(await warm(instances, user)) && round >= 0) sqlCold++;
      const name = `sql ${round} ${randomBytes(3).toString('hex')}`;
      await sql.query('UPDATE users SET name = $1 WHERE id = $2', [name, user.id]);
      const committed = performance.now();
      const [seenA, seenB] = await Promise.all([pollUntil(a, user.id, name, committed), pollUntil(b, user.id, name, committed)]);
      user.name = name;
      if (round < 0) continue;
      if (seenA) sqlA.push(seenA.ms);
      if (seenB) sqlB.push(seenB.ms);
      if (seenA && seenB) {
        sqlBoth.push(Math.max(seenA.ms, seenB.ms));
        sqlPolls.push(seenA.polls, seenB.polls);
        sqlCache.push(seenA.cache, seenB.cache);
        const [fast, slow] = seenA.ms <= seenB.ms ? [seenA, seenB] : [seenB, seenA];
        const outcome = `slower ${slow.cache ?? 'none'} after ${slow.polls} poll(s), faster ${fast.cache ?? 'none'}`;
        sqlByOutcome.set(outcome, [...(sqlByOutcome.get(outcome) ?? []), Math.max(seenA.ms, seenB.ms)]);
      } else {
        const missing = [!seenA && 'A', !seenB && 'B'].filter(Boolean).join(' and ');
        failures.push({
          measure: 'direct SQL',
          round,
          userId: user.id,
          detail: `${missing} still served the old name after ${ROUND_TIMEOUT_MS} ms`,
        });
      }
    }

    // 2. PUT on A: A evicts (and announces on the bus) before it answers; CDC evicts too.
    const putB: number[] = [];
    const putTimes: number[] = [];
    const putPolls: number[] = [];
    const putCache: (string | undefined)[] = [];
    let putCold = 0;
    process.stderr.write(`PUT on A, read on B: ${WARMUP_ROUNDS} warm-up + ${ROUNDS} rounds\n`);
    for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
      const user = users[(round + WARMUP_ROUNDS) % USERS];
      if (!(await warm(instances, user)) && round >= 0) putCold++;
      const name = `put ${round} ${randomBytes(3).toString('hex')}`;
      const sent = performance.now();
      const put = await request(a, 'PUT', `/users/${user.id}`, { email: user.email, name });
      const answered = performance.now();
      if (put.status !== 200) throw new Error(`bench: PUT /users/${user.id} answered ${put.status}: ${put.body}`);
      const seen = await pollUntil(b, user.id, name, answered);
      user.name = name;
      if (round < 0) continue;
      putTimes.push(answered - sent);
      if (seen) {
        putB.push(seen.ms);
        putPolls.push(seen.polls);
        putCache.push(seen.cache);
      } else {
        failures.push({
          measure: 'PUT on A',
          round,
          userId: user.id,
          detail: `B still served the old name ${ROUND_TIMEOUT_MS} ms after the PUT answered`,
        });
      }
    }

    const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
    await redis.connect();
    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    await redis.quit();
    const pgVersion = (await sql.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown';
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    console.log(`\nnode ${process.version}, ${os.availableParallelism()} cores (${cpu}), Redis ${redisVersion}, PostgreSQL ${pgVersion}`);
    console.log(
      `two built users-api processes on one database and one key prefix; ${USERS} users; ${ROUNDS} rounds per measure ` +
        `after ${WARMUP_ROUNDS} warm-up rounds; polls every ${POLL_INTERVAL_MS} ms (one at a time per instance); ` +
        `times are until the reply carrying the new name arrived\n`,
    );
    console.log(
      table(
        [
          { name: 'reference: GET /users/:id, L1 HIT, round trip', samples: hitTimes, attempted: HIT_SAMPLES },
          { name: 'reference: PUT /users/:id on A, round trip', samples: putTimes, attempted: ROUNDS },
          { name: 'SQL UPDATE commit → new name on A', samples: sqlA, attempted: ROUNDS },
          { name: 'SQL UPDATE commit → new name on B', samples: sqlB, attempted: ROUNDS },
          { name: 'SQL UPDATE commit → new name on both', samples: sqlBoth, attempted: ROUNDS, target: SQL_TARGET_P99_MS },
          { name: 'PUT on A answered → new name on B', samples: putB, attempted: ROUNDS, target: PUT_TARGET_P99_MS },
        ],
        hitP50,
      ),
    );
    const sortedSqlPolls = sqlPolls.sort((x, y) => x - y);
    const sortedPutPolls = putPolls.sort((x, y) => x - y);
    console.log(
      `\npolls per instance until visible: SQL p50 ${percentile(sortedSqlPolls, 50)}, max ${sortedSqlPolls.at(-1)}; ` +
        `PUT→B p50 ${percentile(sortedPutPolls, 50)}, max ${sortedPutPolls.at(-1)}` +
        ` (PUT→B already new on the first poll: ${putPolls.filter((n) => n === 1).length}/${putPolls.length})`,
    );
    console.log(`X-Cache of the first reply with the new name: SQL ${tally(sqlCache)}; PUT→B ${tally(putCache)}`);
    console.log('\nSQL rounds by how the two instances got the new name (X-Cache of the first new reply):\n');
    console.log('| slower instance, faster instance | rounds | p50 ms until both | max ms |\n|---|---:|---:|---:|');
    for (const [outcome, times] of [...sqlByOutcome].sort((x, y) => y[1].length - x[1].length)) {
      const sorted = times.sort((x, y) => x - y);
      console.log(`| ${outcome} | ${sorted.length} | ${ms(percentile(sorted, 50))} | ${ms(sorted[sorted.length - 1])} |`);
    }
    console.log(`\nrounds that started without both instances answering HIT: SQL ${sqlCold}, PUT ${putCold}`);
    if (failures.length) {
      console.log(`\n${failures.length} round(s) did not converge within ${ROUND_TIMEOUT_MS} ms:`);
      for (const f of failures) console.log(`- ${f.measure}, round ${f.round}, user ${f.userId}: ${f.detail}`);
    } else {
      console.log('every round converged');
    }
    const logged = instances.flatMap((instance) =>
      instance.output
        .join('')
        .split('\n')
        .filter((line) => /\b(WARN|ERROR)\b/.test(line))
        .map((line) => `${instance.name}: ${stripVTControlCharacters(line).trim()}`),
    );
    if (logged.length) console.log(`\nwarnings and errors the instances logged:\n${logged.slice(0, 20).join('\n')}`);
  } finally {
    await sql.end().catch(() => undefined);
    await Promise.all(instances.map(stop));
    const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null });
    await redis.connect();
    await dropPrefix(redis, prefix);
    await redis.quit();
    await database.drop();
    process.stderr.write(`stopped the instances, dropped the database and the keys under ${prefix}\n`);
  }
}

await main();
