#!/usr/bin/env node
// `npm run demo:traffic -- [--url http://127.0.0.1:3000] [--duration 60s] [--rate 50]`
//
// Drives a mixed load against a running demo (`npm run demo` or `docker compose up`) and shows a
// summary refreshed in place every second. Loopback URLs only; bounded in time, rate and count.
// Node's standard library only (fetch).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run demo:traffic -- [options]

  --url URL          users-api to drive, loopback only           (default http://127.0.0.1:3000)
  --duration TIME    how long: 90, 90s, 2m; at most 1h            (default 60s)
  --rate N           requests per second, 1..1000                 (default 50)
  --users N          users created before the run, 1..1000        (default 100)
  --concurrency N    requests in flight at most, 1..256           (default 32)
  --json             print the final summary as JSON as well
  --help`;

// --- options -----------------------------------------------------------------------------------
let args;
try {
  args = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:3000' },
      duration: { type: 'string', default: '60s' },
      rate: { type: 'string', default: '50' },
      users: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '32' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(`${error.message}\n\n${USAGE}`);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function fail(message) {
  process.stderr.write(`demo-traffic: ${message}\n`);
  process.exit(2);
}

function intOption(name, min, max) {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < min || value > max)
    fail(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(args[name])}`);
  return value;
}

function durationOption(raw) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(raw).trim());
  if (!match) fail(`--duration must look like 90, 90s or 2m, got ${JSON.stringify(raw)}`);
  const ms = Number(match[1]) * { ms: 1, s: 1_000, m: 60_000 }[match[2] ?? 's'];
  if (ms < 1_000 || ms > 3_600_000) fail(`--duration must be from 1s to 1h, got ${raw}`);
  return ms;
}

/** Only this machine: a load generator pointed elsewhere by a typo would be a denial of service. */
function loopbackBase(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    fail(`--url is not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`--url must be http(s), got ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
  if (!loopback) fail(`refusing ${url.host}: demo traffic goes to loopback addresses only (localhost, 127.0.0.0/8, ::1)`);
  return url.origin;
}

const BASE = loopbackBase(args.url);
const DURATION_MS = durationOption(args.duration);
const RATE = intOption('rate', 1, 1000);
const INITIAL_USERS = intOption('users', 1, 1000);
const CONCURRENCY = intOption('concurrency', 1, 256);
const MAX_USERS_CREATED = INITIAL_USERS + 2_000;
const MAX_REQUESTS = Math.ceil((RATE * DURATION_MS) / 1000) + 100;
/** Concurrent GETs of one never-read user: a miss burst that single-flight and the lock should absorb. */
const BURST = 8;
const RUN = randomBytes(3).toString('hex');

// --- statistics --------------------------------------------------------------------------------
const stats = {
  requests: 0,
  errors: 0,
  lastError: '',
  xcache: { HIT: 0, MISS: 0, STALE: 0 },
  latencies: [],
  perSecond: [],
  inFlight: 0,
  usersCreated: 0,
};
let metricsAtStart;
let metricsNow;

async function request(method, path, body, expected) {
  stats.inFlight++;
  const started = performance.now();
  try {
    const response = await fetch(`${BASE}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    const status = response.headers.get('x-cache');
    if (status && status in stats.xcache) stats.xcache[status]++;
    if (!expected.includes(response.status)) {
      stats.errors++;
      stats.lastError = `${method} ${path} → ${response.status} ${text.slice(0, 120)}`;
      return undefined;
    }
    return text ? JSON.parse(text) : null;
  } catch (error) {
    stats.errors++;
    stats.lastError = `${method} ${path} → ${error.name === 'TimeoutError' ? 'timed out after 10 s' : error.message}`;
    return undefined;
  } finally {
    stats.inFlight--;
    stats.requests++;
    if (stats.latencies.length < 200_000) stats.latencies.push(performance.now() - started);
  }
}

/** Counter totals of one /metrics scrape, summed over the labels that are not asked for. */
async function scrapeMetrics() {
  try {
    const response = await fetch(`${BASE}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) return undefined;
    const text = await response.text();
    const totals = {};
    for (const line of text.split('\n')) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!match) continue;
      const [, name, labels = '', value] = match;
      const add = (key) => (totals[key] = (totals[key] ?? 0) + Number(value));
      add(name);
      if (name === 'cache_hits_total') add(`${name}:${/layer="([^"]*)"/.exec(labels)?.[1]}`);
      if (name === 'cache_loads_total') add(`${name}:${/outcome="([^"]*)"/.exec(labels)?.[1]}`);
    }
    return totals;
  } catch {
    return undefined;
  }
}

function metricDelta(name) {
  if (!metricsAtStart || !metricsNow) return 0;
  return (metricsNow[name] ?? 0) - (metricsAtStart[name] ?? 0);
}

// --- the workload ------------------------------------------------------------------------------
const users = []; // { id, email, n }
const coldPool = []; // ids never read by this run
let hotCount = 0;
let fieldsRoute = false;
let putCount = 0;

const pick = (list) => list[Math.floor(Math.random() * list.length)];
/** Skewed towards the front of the hot set, as real traffic is. */
const hotUser = () => users[Math.floor(hotCount * Math.random() ** 2)];
/** Writes land anywhere: each one evicts (CDC, tags) what it touches, so aiming them at the hot set would hide the cache. */
const anyUser = () => pick(users);

async function createUser() {
  if (stats.usersCreated >= MAX_USERS_CREATED) return undefined;
  const n = stats.usersCreated++;
  const email = `traffic-${RUN}-${n}@example.com`;
  const user = await request('POST', '/users', { email, name: `Traffic ${n}`, settings: { theme: 'light' } }, [201]);
  if (!user) return undefined;
  const entry = { id: user.id, email, n };
  users.push(entry);
  return entry;
}

const OPERATIONS = [
  // [weight, requests it costs, run]
  [45, 1, () => request('GET', `/users/${hotUser().id}`, undefined, [200])],
  [
    3,
    BURST,
    async () => {
      let id = coldPool.pop();
      if (id === undefined) id = (await createUser())?.id;
      if (id === undefined) return;
      await Promise.all(Array.from({ length: BURST }, () => request('GET', `/users/${id}`, undefined, [200])));
    },
  ],
  [10, 1, () => request('GET', `/users?limit=20&offset=${20 * Math.floor(Math.random() * 5)}`, undefined, [200])],
  [
    4,
    1,
    () => {
      const user = anyUser();
      return request('PUT', `/users/${user.id}`, { email: user.email, name: `Traffic ${user.n} v${++putCount}` }, [200]);
    },
  ],
  [
    6,
    1,
    () =>
      request(
        'PATCH',
        `/users/${anyUser().id}/settings`,
        { theme: pick(['light', 'dark']), pageSize: pick([10, 20, 50]), by: 'demo-traffic' },
        [200, 202],
      ),
  ],
  [4, 1, () => request('GET', `/users/${anyUser().id}/settings`, undefined, [200])],
  [
    12,
    1,
    () =>
      request(
        'POST',
        '/leaderboards/demo/scores',
        { member: `player-${Math.floor(Math.random() * 500)}`, score: Math.round(Math.random() * 10_000) },
        [200, 201],
      ),
  ],
  [3, 1, () => request('GET', '/leaderboards/demo/top?limit=10', undefined, [200])],
  [
    10,
    1,
    () =>
      request(
        'POST',
        `/pages/${pick(['home', 'pricing', 'docs'])}/visits`,
        { visitorId: `visitor-${Math.floor(Math.random() * 2_000)}` },
        [204],
      ),
  ],
  [2, 1, () => request('GET', `/pages/${pick(['home', 'pricing', 'docs'])}/visitors`, undefined, [200])],
  [
    3,
    1,
    () =>
      fieldsRoute
        ? request('GET', `/users/${hotUser().id}/fields/${pick(['name', 'email', 'version'])}`, undefined, [200])
        : request('GET', `/users/${hotUser().id}`, undefined, [200]),
  ],
];
const TOTAL_WEIGHT = OPERATIONS.reduce((sum, [weight]) => sum + weight, 0);

function nextOperation() {
  let roll = Math.random() * TOTAL_WEIGHT;
  for (const operation of OPERATIONS) {
    roll -= operation[0];
    if (roll < 0) return operation;
  }
  return OPERATIONS[0];
}

// --- the summary -------------------------------------------------------------------------------
const tty = process.stdout.isTTY === true;
let linesDrawn = 0;
let startedAt = 0;

const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–');
const num = (value) => Math.round(value).toLocaleString('en-US');

function percentile(p) {
  if (!stats.latencies.length) return '–';
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  const value = sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return `${value.toFixed(1)} ms`;
}

function summary() {
  const elapsedMs = Math.min(performance.now() - startedAt, DURATION_MS);
  const { HIT, MISS, STALE } = stats.xcache;
  const hits = metricDelta('cache_hits_total');
  const misses = metricDelta('cache_misses_total');
  const loads = metricDelta('cache_loads_total');
  return {
    url: BASE,
    elapsedSeconds: Math.round(elapsedMs / 100) / 10,
    durationSeconds: DURATION_MS / 1000,
    requests: stats.requests,
    requestsPerSecondNow: stats.perSecond.at(-1) ?? 0,
    requestsPerSecondAverage: elapsedMs > 0 ? stats.requests / (elapsedMs / 1000) : 0,
    errors: stats.errors,
    lastError: stats.lastError || undefined,
    usersCreated: stats.usersCreated,
    xCache: { hit: HIT, miss: MISS, stale: STALE, hitRatio: HIT + MISS + STALE ? HIT / (HIT + MISS + STALE) : null },
    metrics: metricsNow
      ? {
          hits,
          hitsL1: metricDelta('cache_hits_total:l1'),
          hitsL2: metricDelta('cache_hits_total:l2'),
          misses,
          hitRatio: hits + misses ? hits / (hits + misses) : null,
          staleServed: metricDelta('cache_stale_served_total'),
          loaderCalls: loads,
          loaderErrors: metricDelta('cache_loads_total:error'),
          lockWaits: metricDelta('cache_lock_waits_total'),
          earlyRefreshes: metricDelta('cache_early_refreshes_total'),
        }
      : null,
    // Every MISS response would have called the loader without single-flight and the lock; loads
    // also count background refreshes and non-HTTP reads, so this is a lower bound.
    missesWithoutOwnLoad: metricsNow ? Math.max(0, MISS - loads) : null,
    latency: { p50: percentile(50), p95: percentile(95), p99: percentile(99) },
  };
}

function render(final = false) {
  const s = summary();
  const barWidth = 30;
  const filled = Math.round((barWidth * s.elapsedSeconds) / s.durationSeconds);
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]`;
  const m = s.metrics;
  const lines = [
    `demo traffic → ${s.url}  ${bar} ${s.elapsedSeconds.toFixed(0)}s / ${s.durationSeconds}s${final ? '  done' : ''}`,
    `requests   ${num(s.requests)} total, ${num(s.requestsPerSecondNow)}/s now, ${s.requestsPerSecondAverage.toFixed(1)}/s average, ${stats.inFlight} in flight; users created ${s.usersCreated}`,
    `X-Cache    HIT ${num(s.xCache.hit)}  MISS ${num(s.xCache.miss)}  STALE ${num(s.xCache.stale)}   hit ratio ${pct(s.xCache.hit, s.xCache.hit + s.xCache.miss + s.xCache.stale)}`,
    m
      ? `/metrics   hits ${num(m.hits)} (L1 ${num(m.hitsL1)}, L2 ${num(m.hitsL2)})  misses ${num(m.misses)}   hit ratio ${pct(m.hits, m.hits + m.misses)}   stale served ${num(m.staleServed)}`
      : '/metrics   (not readable)',
    m
      ? `loader     ${num(m.loaderCalls)} calls (${num(m.loaderErrors)} failed), ${num(m.lockWaits)} lock waits, ${num(m.earlyRefreshes)} early refreshes`
      : 'loader     –',
    m
      ? `stampedes  ${num(s.missesWithoutOwnLoad)} MISS responses served without a loader call of their own (MISS responses ${num(s.xCache.miss)} − loader calls ${num(m.loaderCalls)}; a lower bound)`
      : 'stampedes  –',
    `latency    p50 ${s.latency.p50}  p95 ${s.latency.p95}  p99 ${s.latency.p99}`,
    `errors     ${num(s.errors)}${s.lastError ? `   last: ${s.lastError}` : ''}`,
  ];
  if (tty) {
    const columns = process.stdout.columns || 160;
    let out = linesDrawn ? `\x1b[${linesDrawn}A` : '';
    for (const line of lines) out += `\x1b[2K${line.length > columns ? `${line.slice(0, columns - 1)}…` : line}\n`;
    process.stdout.write(out);
    linesDrawn = lines.length;
  } else if (final || Math.round(s.elapsedSeconds) % 5 === 0) {
    process.stdout.write(`${lines.join('\n')}\n\n`);
  }
}

// --- run ---------------------------------------------------------------------------------------
async function preflight() {
  try {
    const response = await fetch(`${BASE}/health/live`, { signal: AbortSignal.timeout(3_000) });
    if (!response.ok) fail(`${BASE}/health/live answered ${response.status}`);
  } catch (error) {
    fail(`${BASE} does not answer (${error.cause?.code ?? error.message}): start the demo first (npm run demo, or docker compose up)`);
  }
}

async function setup() {
  process.stdout.write(`creating ${INITIAL_USERS} users…\n`);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(8, INITIAL_USERS) }, async () => {
      while (next < INITIAL_USERS) {
        next++;
        await createUser();
      }
    }),
  );
  if (!users.length) fail(`could not create users: ${stats.lastError}`);
  hotCount = Math.max(5, Math.ceil(users.length / 5));
  hotCount = Math.min(hotCount, users.length);
  coldPool.push(
    ...users
      .slice(hotCount)
      .map((user) => user.id)
      .reverse(),
  );
  const probe = await fetch(`${BASE}/users/${users[0].id}/fields/name`).catch(() => undefined);
  fieldsRoute = probe?.status === 200;
  await probe?.text();
}

async function main() {
  await preflight();
  await setup();
  stats.requests = 0;
  stats.errors = 0;
  stats.latencies = [];
  stats.xcache = { HIT: 0, MISS: 0, STALE: 0 };
  metricsAtStart = await scrapeMetrics();
  metricsNow = metricsAtStart;
  startedAt = performance.now();

  let stopped = false;
  const stop = () => (stopped = true);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  let tokens = 0;
  let issued = 0;
  let chosen;
  const TICK_MS = 20;
  const pending = new Set();
  let lastSecondCount = 0;
  let lastSecondAt = performance.now();
  let lastDraw = 0;

  while (!stopped && performance.now() - startedAt < DURATION_MS && issued < MAX_REQUESTS) {
    // Tokens refill at --rate per second; a short backlog is allowed, never more than a quarter second.
    tokens = Math.min(tokens + (RATE * TICK_MS) / 1000, Math.max(BURST, RATE / 4));
    for (;;) {
      // The drawn operation waits for its tokens, so that costly bursts keep their share of the mix.
      chosen ??= nextOperation();
      const [, cost, run] = chosen;
      if (tokens < cost || stats.inFlight + cost > CONCURRENCY || issued + cost > MAX_REQUESTS) break;
      chosen = undefined;
      tokens -= cost;
      issued += cost;
      const task = run().finally(() => pending.delete(task));
      pending.add(task);
    }
    const now = performance.now();
    if (now - lastSecondAt >= 1_000) {
      stats.perSecond.push(((stats.requests - lastSecondCount) * 1_000) / (now - lastSecondAt));
      lastSecondCount = stats.requests;
      lastSecondAt = now;
    }
    if (now - lastDraw >= 1_000) {
      lastDraw = now;
      metricsNow = (await scrapeMetrics()) ?? metricsNow;
      render();
    }
    await new Promise((done) => setTimeout(done, TICK_MS));
  }
  // Let the requests in flight finish (bounded), then one last scrape.
  await Promise.race([Promise.allSettled([...pending]), new Promise((done) => setTimeout(done, 10_000))]);
  metricsNow = (await scrapeMetrics()) ?? metricsNow;
  render(true);
  if (args.json) process.stdout.write(`${JSON.stringify(summary())}\n`);
  process.exit(0);
}

await main();
