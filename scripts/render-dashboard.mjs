#!/usr/bin/env node
// Renders docs/dashboard.png: the panels of the Grafana dashboard (docker/grafana/dashboards/
// cachekit.json), computed from the demo's own /metrics, without Grafana or Docker.
//
//   node scripts/render-dashboard.mjs [--duration 60] [--rate 60] [--out docs/dashboard.png]
//
// It starts everything it needs on free loopback ports and removes it afterwards: a fresh
// PostgreSQL database (DATABASE_URL's server), a cache and a queue redis-server (the compose
// settings), users-api and the worker from dist/ (built if missing), then `demo-traffic.mjs`.
// /metrics of both apps is sampled every second; each panel's query is evaluated on those samples
// (rate = increase over a 10 s window / 10 s; Grafana uses $__rate_interval); the panels are drawn
// as inline SVG in one HTML page, and headless Chromium takes the screenshot.
// Needs: redis-server, chromium (apt-get install chromium), PostgreSQL, and `pg` from node_modules.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: options } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    rate: { type: 'string', default: '60' },
    out: { type: 'string', default: 'docs/dashboard.png' },
    html: { type: 'string' },
    chromium: { type: 'string' },
  },
});
const TRAFFIC_S = Number(options.duration);
const RATE = Number(options.rate);
if (!(TRAFFIC_S >= 10 && TRAFFIC_S <= 600) || !(RATE >= 1 && RATE <= 1000)) {
  console.error('render-dashboard: --duration 10..600 (seconds), --rate 1..1000');
  process.exit(2);
}
const LEAD_S = 10; // sampled before the traffic starts, so every rate window is full from the first point
const TAIL_S = 5;
const WINDOW_S = 10;
const PAUSE = { from: LEAD_S + Math.round(TRAFFIC_S * 0.4), seconds: 10 }; // worker stopped (SIGSTOP) to show the queue at work
const DEMO_ENV = { USERS_CACHE_TTL: '15s', USERS_READ_DELAY_MS: '25' };
const OUT = resolve(root, options.out);
const DASHBOARD = JSON.parse(readFileSync(join(root, 'docker/grafana/dashboards/cachekit.json'), 'utf8'));

const log = (line) => process.stdout.write(`render-dashboard: ${line}\n`);
const cleanups = [];
const cleanup = async () => {
  for (const step of cleanups.reverse()) await step().catch(() => undefined);
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

function freePort() {
  return new Promise((done, fail) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

function startProcess(name, command, args, env = {}) {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const handle = {
    name,
    child,
    output: () => output,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
  cleanups.push(handle.stop);
  return handle;
}

async function waitHttp(url, handle, limitMs = 60_000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (handle.child.exitCode !== null) throw new Error(`${handle.name} exited:\n${handle.output()}`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  throw new Error(`${handle.name}: ${url} not ready:\n${handle.output()}`);
}

async function startRedis(name, args) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `dashboard-${name}-`));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const password = `${name}-render`;
  const handle = startProcess(name, 'redis-server', [
    ...args,
    '--requirepass',
    password,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
  ]);
  for (let i = 0; i < 100 && !(await redisAnswers(port)); i++) await sleep(50);
  return { url: `redis://:${password}@127.0.0.1:${port}`, handle };
}

function redisAnswers(port) {
  return new Promise((done) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
    socket.once('data', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function freshDatabase() {
  const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const name = `dashboard_render_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  cleanups.push(async () => {
    const client = new pg.Client({ connectionString: base.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
  });
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

// --- /metrics samples --------------------------------------------------------------------------
function parseMetrics(text) {
  const series = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return series;
}

async function scrape(url, instance) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(800) });
    if (!response.ok) return [];
    return parseMetrics(await response.text()).map((s) => ({ ...s, labels: { ...s.labels, instance } }));
  } catch {
    return []; // a paused worker does not answer: no sample, as in Prometheus
  }
}

/** `sum by (keys) (name)` of one sample, as a Map from the label values to the sum. */
function sumBy(sample, name, keys) {
  const groups = new Map();
  for (const s of sample.series) {
    if (s.name !== name) continue;
    const group = keys.map((key) => s.labels[key] ?? '').join(' ');
    groups.set(group, (groups.get(group) ?? 0) + s.value);
  }
  return groups;
}

/** `sum by (keys) (rate(name[WINDOW]))` at sample i: the increase over the window / its length. */
function rateBy(samples, i, name, keys) {
  const now = samples[i];
  let j = i;
  while (j > 0 && now.t - samples[j - 1].t <= WINDOW_S) j--;
  if (j === i) return new Map();
  const then = samples[j];
  const seconds = now.t - then.t;
  const before = sumBy(then, name, keys);
  const rates = new Map();
  for (const [group, value] of sumBy(now, name, keys)) rates.set(group, Math.max(0, value - (before.get(group) ?? 0)) / seconds);
  return rates;
}

/**
 * The dashboard's queries, evaluated on the samples (same order and legends as cachekit.json).
 * As in Prometheus, a counter that has no series yet (never incremented) gives no line, not zero.
 */
function evaluatePanels(samples) {
  const series = (entries) => {
    const byName = new Map();
    samples.forEach((sample, i) => {
      for (const [name, value] of entries(i)) {
        if (!byName.has(name))
          byName.set(
            name,
            samples.map((s) => [s.t, null]),
          );
        byName.get(name)[i][1] = value;
      }
    });
    return [...byName].map(([name, points]) => ({ name, points }));
  };
  const map = (m, legend) => [...m].map(([group, value]) => [legend(group), value]);
  return [
    series((i) => {
      const hits = rateBy(samples, i, 'cache_hits_total', ['namespace']);
      const misses = rateBy(samples, i, 'cache_misses_total', ['namespace']);
      const namespaces = new Set([...hits.keys(), ...misses.keys()]);
      return [...namespaces].map((ns) => {
        const h = hits.get(ns) ?? 0;
        const m = misses.get(ns) ?? 0;
        return [ns, h + m > 0 ? h / (h + m) : null];
      });
    }),
    series((i) => [
      ...map(rateBy(samples, i, 'cache_hits_total', ['layer']), (layer) => `hit ${layer}`),
      ...map(rateBy(samples, i, 'cache_misses_total', []), () => 'miss'),
    ]),
    series((i) => [
      ...map(rateBy(samples, i, 'cache_loads_total', ['namespace', 'outcome']), (group) => group),
      ...map(rateBy(samples, i, 'cache_lock_waits_total', []), () => 'lock waits'),
    ]),
    series((i) => map(rateBy(samples, i, 'cache_stale_served_total', ['namespace']), (ns) => ns)),
    series((i) => {
      const depths = samples[i].series.filter((s) => s.name === 'write_behind_queue_depth').map((s) => s.value);
      return depths.length ? [['jobs not yet done', Math.max(...depths)]] : [];
    }),
    series((i) =>
      map(
        sumBy({ series: samples[i].series.filter((s) => s.name === 'cdc_lag_seconds') }, 'cdc_lag_seconds', ['instance']),
        (instance) => instance,
      ),
    ),
  ];
}

// --- drawing -----------------------------------------------------------------------------------
const COLORS = ['#73BF69', '#F2CC0C', '#5794F2', '#FF780A', '#F2495C', '#B877D9', '#8AB8FF', '#FADE2A'];
const escapeXml = (text) => String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  switch (unit) {
    case 'percentunit':
      return `${(value * 100).toFixed(value >= 0.995 || value === 0 ? 0 : 1)}%`;
    case 'reqps':
      return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} req/s`;
    case 'ops':
      return `${value < 10 ? value.toFixed(value < 1 ? 2 : 1) : value.toFixed(0)} ops/s`;
    case 's':
      return value < 1 ? `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms` : `${value.toFixed(2)} s`;
    default:
      return value < 10 && !Number.isInteger(value) ? value.toFixed(1) : value.toFixed(0);
  }
}

function niceMax(max) {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max / 4));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s * 4 >= max);
  return step * 4;
}

function chartSvg(panel, lines, tMax) {
  const unit = panel.fieldConfig.defaults.unit;
  const width = 440;
  const height = 252;
  const left = 64;
  const bottom = 22;
  const top = 8;
  const right = 8;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const values = lines.flatMap((line) => line.points.map(([, v]) => v)).filter((v) => v !== null);
  const yMax = panel.fieldConfig.defaults.max ?? niceMax(Math.max(...values, unit === 's' ? 0.004 : unit === 'short' ? 4 : 0.4));
  const x = (t) => left + (plotW * t) / tMax;
  const y = (v) => top + plotH - (plotH * Math.min(v, yMax)) / yMax;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`;
  if (panel.id === 5) {
    svg += `<rect x="${x(PAUSE.from)}" y="${top}" width="${x(PAUSE.from + PAUSE.seconds) - x(PAUSE.from)}" height="${plotH}" fill="#F2495C" fill-opacity="0.12"/>`;
    svg += `<text x="${x(PAUSE.from) + 4}" y="${top + 14}" fill="#F2495C" font-size="11">worker paused</text>`;
  }
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    svg += `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3235" stroke-width="1"/>`;
    svg += `<text x="${left - 6}" y="${y(v) + 4}" fill="#9fa7b3" font-size="11" text-anchor="end">${escapeXml(formatValue(v, unit))}</text>`;
  }
  const step = tMax > 60 ? 20 : 10;
  for (let t = 0; t <= tMax; t += step) {
    svg += `<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${top + plotH}" stroke="#2c3235" stroke-width="1"/>`;
    svg += `<text x="${x(t)}" y="${height - 6}" fill="#9fa7b3" font-size="11" text-anchor="middle">${t}s</text>`;
  }
  lines.forEach((line, n) => {
    const color = COLORS[n % COLORS.length];
    let segment = [];
    const segments = [];
    for (const [t, v] of line.points) {
      if (v === null) {
        if (segment.length) segments.push(segment);
        segment = [];
      } else segment.push([x(t), y(v)]);
    }
    if (segment.length) segments.push(segment);
    for (const points of segments) {
      const path = points.map(([px, py], k) => `${k ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
      const base = y(0).toFixed(1);
      svg += `<path d="${path}L${points.at(-1)[0].toFixed(1)},${base}L${points[0][0].toFixed(1)},${base}Z" fill="${color}" fill-opacity="0.1"/>`;
      svg += `<path d="${path}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"/>`;
    }
  });
  if (!lines.length)
    svg += `<text x="${left + plotW / 2}" y="${top + plotH / 2}" fill="#9fa7b3" font-size="13" text-anchor="middle">No data</text>`;
  return `${svg}</svg>`;
}

function legendHtml(panel, lines) {
  const unit = panel.fieldConfig.defaults.unit;
  return lines
    .map((line, n) => {
      const defined = line.points.map(([, v]) => v).filter((v) => v !== null);
      const last = defined.at(-1) ?? null;
      const max = defined.length ? Math.max(...defined) : null;
      return `<span class="item"><i style="background:${COLORS[n % COLORS.length]}"></i>${escapeXml(line.name)} <b>last ${escapeXml(formatValue(last, unit))}</b> <b>max ${escapeXml(formatValue(max, unit))}</b></span>`;
    })
    .join('');
}

function pageHtml(panels, tMax, traffic) {
  const cards = DASHBOARD.panels
    .map((panel, n) => {
      const queries = panel.targets
        .map((target) => `<code>${escapeXml(target.expr.replaceAll('$__rate_interval', `${WINDOW_S}s`))}</code>`)
        .join('');
      return `<section class="panel"><h2>${escapeXml(panel.title)}</h2>${chartSvg(panel, panels[n], tMax)}<div class="legend">${legendHtml(panel, panels[n])}</div><div class="queries">${queries}</div></section>`;
    })
    .join('');
  const summary = traffic
    ? `${traffic.requests.toLocaleString('en-US')} requests at ${traffic.requestsPerSecondAverage.toFixed(0)} req/s, ${traffic.errors} errors; X-Cache hit ratio ${(100 * (traffic.xCache.hitRatio ?? 0)).toFixed(1)} %; ${traffic.missesWithoutOwnLoad ?? 0} MISS responses served without a loader call of their own`
    : 'traffic summary unavailable';
  return `<!doctype html><html><head><meta charset="utf-8"><title>cachekit dashboard (rendered)</title><style>
  body{margin:0;background:#111217;color:#d8d9da;font:13px/1.35 "DejaVu Sans",Arial,sans-serif}
  header{display:flex;align-items:baseline;gap:16px;padding:10px 16px 4px}
  header h1{font-size:18px;margin:0;color:#fff;font-weight:500}
  header .meta{color:#9fa7b3}
  .caption{margin:0 16px 8px;padding:6px 10px;border-left:3px solid #F2CC0C;background:#181b1f;color:#ccccdc;font-size:12px}
  main{display:grid;grid-template-columns:repeat(3,1fr);gap:8px;padding:0 16px}
  .panel{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px 4px;height:396px;box-sizing:border-box;overflow:hidden}
  .panel h2{font-size:14px;margin:0 0 4px;color:#fff;font-weight:500}
  .legend{display:flex;flex-wrap:wrap;gap:2px 12px;font-size:11.5px;margin-top:2px}
  .legend .item{white-space:nowrap}.legend i{display:inline-block;width:12px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
  .legend b{font-weight:normal;color:#9fa7b3;margin-left:4px}
  .queries code{display:block;color:#6e9fff;font-size:9.5px;margin-top:3px;word-break:break-all;font-family:"DejaVu Sans Mono",monospace}
  </style></head><body>
  <header><h1>cachekit</h1><span class="meta">demo stack · last ${tMax} s · ${escapeXml(summary)}</span></header>
  <p class="caption">Rendered from the demo's <code>/metrics</code> (users-api and worker, sampled every second) with the dashboard's queries
  (docker/grafana/dashboards/cachekit.json, <code>$__rate_interval</code> = ${WINDOW_S} s): an HTML/SVG drawing by scripts/render-dashboard.mjs, <b>not by Grafana</b>.
  Traffic (npm run demo:traffic, ${RATE} req/s) from ${LEAD_S} s to ${LEAD_S + TRAFFIC_S} s; USERS_CACHE_TTL=${DEMO_ENV.USERS_CACHE_TTL}, USERS_READ_DELAY_MS=${DEMO_ENV.USERS_READ_DELAY_MS};
  the worker was stopped (SIGSTOP) from ${PAUSE.from} s to ${PAUSE.from + PAUSE.seconds} s.</p>
  <main>${cards}</main></body></html>`;
}

function findChromium() {
  const candidates = [options.chromium, 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'].filter(Boolean);
  return candidates.find((command) => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0);
}

// --- run ---------------------------------------------------------------------------------------
async function main() {
  for (const file of [
    'dist/apps/users-api/main.js',
    'dist/apps/worker/main.js',
    'libs/cache/dist/index.js',
    'libs/users-domain/dist/index.js',
  ]) {
    if (!existsSync(join(root, file))) {
      log('building (dist/ is missing)');
      if (spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
      break;
    }
  }
  const chromium = findChromium();
  if (!chromium && !options.html)
    throw new Error('no chromium found (apt-get install chromium, or --chromium PATH; --html FILE writes the page only)');

  const databaseUrl = await freshDatabase();
  const cacheRedis = await startRedis('cache-redis', [
    '--maxmemory',
    '256mb',
    '--maxmemory-policy',
    'allkeys-lfu',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  const queueRedis = await startRedis('queue-redis', ['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']);
  const [apiPort, workerPort] = [await freePort(), await freePort()];
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: cacheRedis.url,
    QUEUE_REDIS_URL: queueRedis.url,
    CACHE_KEY_PREFIX: 'cache:',
    PORT: String(apiPort),
    WORKER_PORT: String(workerPort),
    ...DEMO_ENV,
  };
  log(`starting users-api on :${apiPort} and the worker on :${workerPort}`);
  const api = startProcess('users-api', process.execPath, ['dist/apps/users-api/main.js'], env);
  await waitHttp(`http://127.0.0.1:${apiPort}/health/live`, api);
  const worker = startProcess('worker', process.execPath, ['dist/apps/worker/main.js'], env);
  await waitHttp(`http://127.0.0.1:${workerPort}/health/ready`, worker);

  const samples = [];
  const started = Date.now();
  let traffic;
  let trafficOutput = '';
  const total = LEAD_S + TRAFFIC_S + TAIL_S;
  log(`sampling /metrics for ${total} s (traffic from ${LEAD_S} s)`);
  for (let second = 0; second <= total; second++) {
    const due = started + second * 1000;
    if (Date.now() < due) await sleep(due - Date.now());
    if (second === LEAD_S) {
      traffic = startProcess('demo-traffic', process.execPath, [
        'scripts/demo-traffic.mjs',
        '--url',
        `http://127.0.0.1:${apiPort}`,
        '--duration',
        `${TRAFFIC_S}s`,
        '--rate',
        String(RATE),
        '--json',
      ]);
      traffic.child.stdout.on('data', (chunk) => (trafficOutput += chunk));
    }
    if (second === PAUSE.from) worker.child.kill('SIGSTOP');
    if (second === PAUSE.from + PAUSE.seconds) worker.child.kill('SIGCONT');
    const [apiSeries, workerSeries] = await Promise.all([
      scrape(`http://127.0.0.1:${apiPort}/metrics`, 'users-api'),
      scrape(`http://127.0.0.1:${workerPort}/metrics`, 'worker'),
    ]);
    samples.push({ t: second, series: [...apiSeries, ...workerSeries] });
  }
  if (traffic && traffic.child.exitCode === null) await new Promise((done) => traffic.child.once('exit', done));
  const summaryLine = trafficOutput
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .at(-1);
  const trafficSummary = summaryLine ? JSON.parse(summaryLine) : undefined;
  if (trafficSummary) log(`traffic: ${trafficSummary.requests} requests, ${trafficSummary.errors} errors`);

  const html = pageHtml(evaluatePanels(samples), total, trafficSummary);
  const htmlFile = options.html ? resolve(options.html) : join(mkdtempSync(join(tmpdir(), 'dashboard-page-')), 'dashboard.html');
  writeFileSync(htmlFile, html);
  if (!options.html) cleanups.push(async () => rmSync(dirname(htmlFile), { recursive: true, force: true }));
  if (chromium) {
    mkdirSync(dirname(OUT), { recursive: true });
    const profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
    cleanups.push(async () => rmSync(profile, { recursive: true, force: true }));
    const shot = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        `--screenshot=${OUT}`,
        '--window-size=1400,900',
        pathToFileURL(htmlFile).href,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (shot.status !== 0 || !existsSync(OUT)) throw new Error(`chromium failed (${shot.status}):\n${shot.stderr}`);
    log(`wrote ${OUT}`);
  }
  if (options.html) log(`wrote ${htmlFile}`);
}

try {
  await main();
  await cleanup();
  process.exit(0);
} catch (error) {
  console.error(`render-dashboard: ${error.message}`);
  await cleanup();
  process.exit(1);
}
