import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import {
  anonymousPing,
  commandOf,
  type ComposeService,
  environmentOf,
  flag,
  interpolate,
  loadYaml,
  ManagedProcess,
  waitFor,
} from './support/compose.js';
import { freeClusterPort, spawnTied } from './support/redis-topologies.js';
import { createTestDatabase } from './support/services.js';
import { eventually } from './support/wait.js';
import { freePort } from './support/worker-process.js';

/**
 * The `cluster` profile of docker-compose.yml without Docker: the six cluster nodes' own
 * redis-server commands run here on loopback ports, the `cluster-init` job's own command joins
 * them, and users-api runs with users-api-cluster-1's environment. Compose host names become
 * 127.0.0.1:<port> of the local stand-in, everywhere the file names them; variables take the
 * file's defaults, as `docker compose --profile cluster up` does without a `.env`.
 */

const ROOT = resolve('.');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const INIT = 'cluster-init';
const APP = 'users-api-cluster-1';
/** What the runtime image sets (docker/Dockerfile `ENV`) besides the service's own environment. */
const IMAGE_ENV = { NODE_ENV: 'production' };

interface LocalNode {
  name: string;
  /** `host:port` as the compose file names it */
  composeAddress: string;
  port: number;
  server: ManagedProcess;
}

/** `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <primary id> <ping> <pong> <epoch> <link> <slot>...` */
function parseClusterNodes(text: string) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, primary, , , , , ...slots] = line.trim().split(' ');
      const slotCount = slots
        .filter((slot) => !slot.startsWith('['))
        .reduce((sum, slot) => {
          const [from, to = from] = slot.split('-').map(Number);
          return sum + to - from + 1;
        }, 0);
      return { id, port: Number(/:(\d+)@/.exec(address)?.[1]), flags: flags.split(','), primary, slotCount };
    });
}

const json = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the docker-compose cluster profile, run without Docker', () => {
  let services: Record<string, ComposeService>;
  let password: string;
  const nodes: LocalNode[] = [];
  const processes: ManagedProcess[] = [];
  let root: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let queuePort = 0;
  let apiPort = 0;
  let api: ManagedProcess | undefined;
  let init: { code: number | null; output: string } | undefined;

  /** A bounded connection; `secret` null = no AUTH. */
  const client = (port: number, secret: string | null = password) => {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      password: secret ?? undefined,
      // Without a password the ready check (INFO) would fail with NOAUTH and close the connection.
      enableReadyCheck: secret !== null,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2_000,
      commandTimeout: 3_000,
    });
    redis.on('error', () => undefined);
    return redis;
  };
  async function ask<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = client(port);
    try {
      await redis.connect();
      return await run(redis);
    } finally {
      redis.disconnect();
    }
  }
  const clusterInfo = (port: number) => ask(port, (redis) => redis.call('CLUSTER', 'INFO') as Promise<string>);

  /** The service's command, spawned here (not outliving this process); answers once `ready` holds. */
  async function startRedisService(name: string, port: number, extra: string[]): Promise<ManagedProcess> {
    const command = commandOf(services[name], name);
    expect(command[0]).toBe('redis-server');
    const dir = mkdtempSync(join(root, `${name}-`));
    // The compose arguments first; then only where and how to listen here (the last value wins).
    const args = [...command.slice(1), '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', ...extra];
    const server = new ManagedProcess(`${name} (redis-server)`, spawnTied('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    server.child.on('error', (error) => (server.output += `\nspawn failed: ${error.message} (is redis-server installed?)`));
    processes.push(server);
    // PONG from this process, not from someone else who took the port first.
    const secret = flag(command, '--requirepass');
    await waitFor(
      'PONG',
      server,
      async () => {
        const redis = client(port, secret ?? null);
        try {
          await redis.connect();
          return /^process_id:(\d+)/m.exec(await redis.info('server'))?.[1] === String(server.child.pid);
        } finally {
          redis.disconnect();
        }
      },
      5_000,
    );
    return server;
  }

  /** Compose host names of cluster nodes -> 127.0.0.1:<local port>, in any text. */
  function swapHosts(text: string): string {
    return nodes.reduce((out, node) => out.split(node.composeAddress).join(`127.0.0.1:${node.port}`), text);
  }

  /** Runs the cluster-init job's own command (host names swapped); answers its exit code and output. */
  async function runInit(): Promise<{ code: number | null; output: string }> {
    const [binary, ...args] = commandOf(services[INIT], INIT).map(swapHosts);
    const job = new ManagedProcess(
      INIT,
      spawnTied(binary, args, { env: { PATH: process.env.PATH, ...environmentOf(services[INIT]) }, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    processes.push(job);
    const code = await new Promise<number | null>((done) => {
      const timer = setTimeout(() => job.child.kill('SIGKILL'), 30_000);
      job.child.once('exit', (exitCode) => {
        clearTimeout(timer);
        done(exitCode);
      });
    });
    return { code, output: job.output };
  }

  function localEnvironment(name: string): Record<string, string> {
    const local: Record<string, string> = {};
    for (const [key, value] of Object.entries(environmentOf(services[name]))) {
      if (key === 'PORT') local[key] = String(apiPort);
      else if (key === 'REDIS_CLUSTER_NODES') local[key] = swapHosts(value);
      else if (/^[a-z]+:\/\//.test(value)) {
        const parsed = new URL(value);
        if (parsed.hostname === 'postgres') local[key] = database!.url;
        else if (parsed.hostname === 'queue-redis') {
          parsed.hostname = '127.0.0.1';
          parsed.port = String(queuePort);
          local[key] = parsed.toString();
        } else throw new Error(`${name}: ${key}=${value} names no service this test stands in for`);
      } else local[key] = value;
    }
    return local;
  }

  beforeAll(async () => {
    services = (interpolate(loadYaml(COMPOSE_FILE)) as { services?: Record<string, ComposeService> }).services ?? {};
    const nodeNames = Object.keys(services).filter(
      (name) =>
        services[name].profiles?.includes('cluster') &&
        Array.isArray(services[name].command) &&
        services[name].command[0] === 'redis-server',
    );
    expect(nodeNames).toHaveLength(6);
    expect(Object.keys(services)).toEqual(expect.arrayContaining([INIT, APP, 'users-api-cluster-2']));
    password = flag(commandOf(services[nodeNames[0]], nodeNames[0]), '--requirepass') ?? '';
    expect(password).not.toBe('');

    root = mkdtempSync(join(tmpdir(), 'stack-cluster-'));
    // Each node announces the host name that clients are sent (MOVED, CLUSTER SLOTS): its service
    // name in compose, 127.0.0.1 here, the same swap as everywhere else.
    const started = await Promise.allSettled(
      nodeNames.map(async (name) => {
        const command = commandOf(services[name], name);
        const port = await freeClusterPort();
        const server = await startRedisService(name, port, ['--cluster-announce-hostname', '127.0.0.1']);
        return { name, composeAddress: `${name}:${flag(command, '--port') ?? 6379}`, port, server };
      }),
    );
    for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;

    init = await runInit();
    if (init.code !== 0) throw new Error(`${INIT} exited with ${init.code}:\n${init.output}`);
    const formed = await eventually(async () => {
      for (const node of nodes) {
        if (!/^cluster_state:ok\r?$/m.test(await clusterInfo(node.port).catch(() => ''))) return false;
        const replication = await ask(node.port, (redis) => redis.info('replication')).catch(() => '');
        if (!/^role:master\r?$/m.test(replication) && !/^master_link_status:up\r?$/m.test(replication)) return false;
      }
      return true;
    }, 15_000);
    if (!formed) throw new Error(`no cluster_state:ok on every node, replicas in sync, in 15 s:\n${init.output}`);

    // What users-api-cluster-1 needs besides the cluster: PostgreSQL and the queue Redis.
    database = await createTestDatabase('stack_cluster');
    queuePort = await freePort();
    await startRedisService('queue-redis', queuePort, []);
    apiPort = await freePort();
    const [binary, ...args] = commandOf(services[APP], APP);
    expect(binary).toBe('node');
    if (!existsSync(join(ROOT, args[0]))) throw new Error(`${args[0]} is missing: run npm run build first`);
    api = new ManagedProcess(
      APP,
      spawnTied(process.execPath, args, {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          ...IMAGE_ENV,
          ...localEnvironment(APP),
          // The file gives these apps no REDIS_URL, so the app's default would be this machine's
          // Redis on 6379: a closed port instead, so that ignoring REDIS_CLUSTER_NODES cannot pass.
          REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    processes.push(api);
    await waitFor('200 on /health/live', api, async () => (await fetch(`http://127.0.0.1:${apiPort}/health/live`)).status === 200, 25_000);
  }, 60_000);

  afterAll(async () => {
    await api?.stop();
    await Promise.all(processes.map((each) => each.stop()));
    await database?.drop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it("the nodes refuse clients without the file's password, and run with the compose settings", async () => {
    for (const node of nodes) {
      expect({ node: node.name, reply: await anonymousPing(node.port) }).toEqual({
        node: node.name,
        reply: expect.stringMatching(/^-NOAUTH/),
      });
      const anonymous = client(node.port, null);
      try {
        await anonymous.connect();
        await expect(anonymous.call('AUTH', `not-${password}`)).rejects.toThrow(/WRONGPASS/);
      } finally {
        anonymous.disconnect();
      }
      const command = commandOf(services[node.name], node.name);
      expect(
        await ask(node.port, async (redis) => [
          await redis.ping(),
          ...((await redis.config('GET', 'cluster-enabled')) as string[]),
          ...((await redis.config('GET', 'maxmemory-policy')) as string[]),
        ]),
      ).toEqual(['PONG', 'cluster-enabled', 'yes', 'maxmemory-policy', flag(command, '--maxmemory-policy')]);
    }
  });

  it('cluster-init made 3 primaries holding all 16384 slots and 3 replicas, one per primary, in sync (masterauth)', async () => {
    expect(init?.code).toBe(0);
    const info = await clusterInfo(nodes[0].port);
    expect(info).toMatch(/^cluster_state:ok\r?$/m);
    expect(info).toMatch(/^cluster_known_nodes:6\r?$/m);
    expect(info).toMatch(/^cluster_size:3\r?$/m);
    const view = parseClusterNodes(await ask(nodes[0].port, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>));
    expect(view.map((node) => node.port).sort()).toEqual(nodes.map((node) => node.port).sort());
    const primaries = view.filter((node) => node.flags.includes('master'));
    const replicas = view.filter((node) => node.flags.includes('slave'));
    expect([primaries.length, replicas.length]).toEqual([3, 3]);
    expect(primaries.reduce((sum, node) => sum + node.slotCount, 0)).toBe(16_384);
    expect(primaries.every((node) => node.slotCount > 0)).toBe(true);
    expect(replicas.map((node) => node.primary).sort()).toEqual(primaries.map((node) => node.id).sort());
    // A replica syncs from a primary that requires a password only with masterauth.
    for (const replica of replicas) {
      expect(await ask(replica.port, (redis) => redis.info('replication'))).toMatch(/^master_link_status:up\r?$/m);
    }
  });

  it('cluster-init is safe to run again (compose runs it on every up): exit 0, the same cluster', async () => {
    const before = await clusterInfo(nodes[0].port);
    const again = await runInit();
    expect({ code: again.code, output: again.output }).toEqual({ code: 0, output: expect.any(String) });
    const after = await clusterInfo(nodes[0].port);
    const epoch = (text: string) => /^cluster_current_epoch:(\d+)/m.exec(text)?.[1];
    expect(epoch(after)).toBe(epoch(before));
    expect(after).toMatch(/^cluster_state:ok\r?$/m);
  });

  it(`users-api with ${APP}'s environment caches in the cluster: POST, then GET is a MISS, then a HIT`, async () => {
    const url = (path: string) => `http://127.0.0.1:${apiPort}${path}`;
    const created = await fetch(url('/users'), { method: 'POST', ...json({ email: 'cluster@example.com', name: 'Cluster' }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const first = await fetch(url(`/users/${id}`));
    expect([first.status, first.headers.get('x-cache')]).toEqual([200, 'MISS']);
    const second = await fetch(url(`/users/${id}`));
    expect([second.status, second.headers.get('x-cache')]).toEqual([200, 'HIT']);
    expect(await second.json()).toMatchObject({ id, email: 'cluster@example.com', name: 'Cluster' });

    // The cached user is in the cluster (a HIT alone could come from the in-process L1).
    const prefix = environmentOf(services[APP]).CACHE_KEY_PREFIX;
    const keys: string[] = [];
    for (const node of nodes) {
      const role = await ask(node.port, (redis) => redis.info('replication'));
      if (!/^role:master\r?$/m.test(role)) continue;
      keys.push(...(await ask(node.port, (redis) => redis.keys(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`))));
    }
    expect(keys).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`user:${id}(?!\\d)`))]));
  });
});
