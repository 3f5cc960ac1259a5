import { type ChildProcess, execFile, spawn, type SpawnOptions, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './worker-process.js';

/**
 * Real local Redis topologies for failover tests: a primary, a replica and a Sentinel
 * (`startSentinel`), or a 3 primaries + 3 replicas Redis Cluster (`startCluster`). Every process
 * listens on 127.0.0.1 only, on a free port, and works in its own folder under one temp dir
 * (config, `nodes.conf`, log), so nothing is written in the repo; `stop()` SIGKILLs them all and
 * removes that dir. Each server's log is `<tmp>/<role>-<port>/redis.log`, quoted in start-up errors.
 */

export interface Address {
  host: string;
  port: number;
}

export interface SentinelTopology {
  /** The one Sentinel, as ioredis wants it: `new Redis({ sentinels, name })`. */
  sentinels: Address[];
  /** The monitored primary's name. */
  name: string;
  /** `redis://host:port` of the primary the Sentinel reports right now. */
  primaryUrl(): Promise<string>;
  /** SIGKILLs the process the Sentinel reports as primary; the Sentinel then promotes the replica. */
  killPrimary(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterTopology {
  /** All 6 nodes in start order (redis-cli makes the first three the primaries; ask the cluster, don't rely on it). */
  nodes: Address[];
  /** SIGKILLs the primary that serves `key`'s slot right now and answers its address. */
  killPrimaryOf(key: string): Promise<Address>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_MS = 5_000;

/**
 * Children get SIGKILL when this process dies (`setpriv --pdeathsig`), so a crashed or killed
 * Jest worker leaves no redis-server behind; without setpriv the `exit` hook below is all there is.
 */
const PDEATHSIG = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
const live = new Set<ChildProcess>();
let exitHook = false;

function spawnRedis(args: string[]): ChildProcess {
  const child = spawnTied('redis-server', args, { stdio: 'ignore' });
  child.on('error', () => undefined); // reported as an early exit by `launch`
  return child;
}

/**
 * `spawn(command, args, options)` for a child that must not outlive this process: SIGKILLed when
 * it dies (setpriv --pdeathsig, same pid as the command since setpriv execs it) or exits.
 */
export function spawnTied(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = PDEATHSIG ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], options) : spawn(command, args, options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const each of live) each.kill('SIGKILL');
    });
  }
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function kill(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const done = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await done;
}

/** A short-lived admin connection to one server: no retries, no offline queue, bounded commands. */
async function withClient<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1];
}

/** Polls `check` until it answers true or `ms` pass; a throwing check counts as "not yet". */
async function until(ms: number, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not within ${ms} ms${last ? `: ${(last as Error).message}` : ''}`, { cause: last });
    }
    await sleep(100);
  }
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Server {
  port: number;
  child: ChildProcess;
  log: string;
}

/**
 * Starts one redis-server in `<root>/<role>-<port>` and waits until it answers PING *as this
 * process* (INFO process_id), not as someone else who took the port between our check and its
 * bind. A bind failure (the port was taken meanwhile) is retried on a new port.
 */
async function launch(
  root: string,
  role: string,
  pickPort: () => Promise<number>,
  argsFor: (port: number, dir: string, log: string) => Promise<string[]> | string[],
): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort();
    const dir = join(root, `${role}-${port}`);
    await mkdir(dir, { recursive: true });
    const log = join(dir, 'redis.log');
    const child = spawnRedis(await argsFor(port, dir, log));
    const deadline = Date.now() + START_MS;
    while (!exited(child) && Date.now() < deadline) {
      try {
        const info = await withClient(port, (redis) => redis.info('server'));
        if (Number(field(info, 'process_id')) === child.pid) return { port, child, log };
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    await kill(child);
    const why = await tail(log);
    if (attempt < 5 && /in use|bind|Could not create server TCP listening socket/i.test(why)) continue;
    throw new Error(`redis-server ${role} on ${port} did not start within ${START_MS} ms:\n${why}`);
  }
}

// No 5 s diskless-sync delay (the 7.0 default): a replica is in sync about at once.
const BASE_ARGS = ['--bind', HOST, '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'];

function serverArgs(port: number, dir: string, log: string, extra: string[] = []): string[] {
  return ['--port', String(port), ...BASE_ARGS, '--dir', dir, '--logfile', log, ...extra];
}

/** Starts what `start` starts; if that throws, kills whatever it had started and removes `root`. */
async function topology<T>(prefix: string, start: (root: string, servers: Server[]) => Promise<T>): Promise<T & { stop(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const servers: Server[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => kill(server.child)));
    await rm(root, { recursive: true, force: true });
  };
  try {
    return { ...(await start(root, servers)), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * One primary, one replica (`--replicaof`) and one Sentinel (`redis-server <conf> --sentinel`,
 * quorum 1, down-after 1 s, failover-timeout 3 s). Resolves once the replica is in sync and the
 * Sentinel reports the primary and a healthy replica, so that a failover can promote it.
 */
export async function startSentinel(options: { name?: string; timeoutMs?: number } = {}): Promise<SentinelTopology> {
  const name = options.name ?? 'cachekit';
  const timeoutMs = options.timeoutMs ?? 15_000;
  return topology('redis-sentinel-', async (root, servers) => {
    const primary = await launch(root, 'primary', freePort, (port, dir, log) => serverArgs(port, dir, log));
    servers.push(primary);
    const replica = await launch(root, 'replica', freePort, (port, dir, log) =>
      serverArgs(port, dir, log, ['--replicaof', HOST, String(primary.port)]),
    );
    servers.push(replica);
    await until(timeoutMs, `replica ${replica.port} in sync with ${primary.port}`, () =>
      withClient(replica.port, async (redis) => {
        const info = await redis.info('replication');
        return field(info, 'master_link_status') === 'up' && field(info, 'master_sync_in_progress') === '0';
      }),
    );
    // Started after the replica is attached: the Sentinel learns replicas from the primary's INFO,
    // which it asks at once on connecting and then only every 10 s.
    const sentinel = await launch(root, 'sentinel', freePort, async (port, dir, log) => {
      const conf = join(dir, 'sentinel.conf'); // the Sentinel rewrites it: it must be writable, and ours
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `logfile ${log}`,
          `sentinel announce-ip ${HOST}`,
          'sentinel resolve-hostnames no',
          'sentinel announce-hostnames no',
          `sentinel monitor ${name} ${HOST} ${primary.port} 1`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 3000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      return [conf, '--sentinel'];
    });
    servers.push(sentinel);

    const primaryAddress = async (): Promise<Address> => {
      const reply = (await withClient(sentinel.port, (redis) => redis.call('SENTINEL', 'get-master-addr-by-name', name))) as
        [string, string] | null;
      if (!reply) throw new Error(`sentinel knows no primary named ${name}`);
      return { host: reply[0], port: Number(reply[1]) };
    };
    await until(timeoutMs, `sentinel ${sentinel.port} reporting primary ${primary.port} and replica ${replica.port}`, async () => {
      if ((await primaryAddress()).port !== primary.port) return false;
      const replicas = (await withClient(sentinel.port, (redis) => redis.call('SENTINEL', 'replicas', name))) as string[][];
      return replicas.some((flat) => {
        const entry = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2) entry.set(flat[i], flat[i + 1]);
        return entry.get('port') === String(replica.port) && entry.get('flags') === 'slave' && entry.get('master-link-status') === 'ok';
      });
    });

    return {
      sentinels: [{ host: HOST, port: sentinel.port }],
      name,
      primaryUrl: async () => {
        const { host, port } = await primaryAddress();
        return `redis://${host}:${port}`;
      },
      killPrimary: async () => {
        const { port } = await primaryAddress();
        const server = servers.find((each) => each.port === port && each !== sentinel);
        if (!server) throw new Error(`the sentinel reports primary ${port}, which this topology did not start`);
        await kill(server.child);
      },
    };
  });
}

/** Whether `port` can be bound on loopback right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, HOST, () => server.close(() => done(true)));
  });
}

const taken = new Set<number>();

/**
 * A port p with p and p + 10000 (the cluster bus) both free. Drawn from 12000..22767 so that both
 * stay below Linux's ephemeral range (32768+), where `freePort()` (listen on 0) and outgoing
 * connections pick theirs, and below 55535 as the bus port requires.
 */
export async function freeClusterPort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 12_000 + Math.floor(Math.random() * 10_768);
    if (taken.has(port)) continue;
    if ((await bindable(port)) && (await bindable(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair (p, p + 10000) found');
}

interface ClusterNode {
  id: string;
  port: number;
  flags: string[];
  slots: Array<[number, number]>;
}

/** `CLUSTER NODES` lines: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...` */
function parseNodes(text: string): ClusterNode[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [id, address, flags, , , , , , ...slots] = line.trim().split(' ');
      return {
        id,
        port: Number(/:(\d+)@/.exec(address)?.[1]),
        flags: flags.split(','),
        slots: slots
          .filter((slot) => !slot.startsWith('[')) // importing/migrating markers
          .map((slot) => {
            const [from, to = from] = slot.split('-').map(Number);
            return [from, to] as [number, number];
          }),
      };
    });
}

/**
 * Six cluster nodes (node timeout 1 s) joined by `redis-cli --cluster create ... --cluster-replicas 1`.
 * Resolves once every node reports `cluster_state:ok` with all 16384 slots ok and 6 known nodes,
 * and every replica's link to its primary is up (an unsynced replica may refuse to fail over).
 */
export async function startCluster(options: { timeoutMs?: number } = {}): Promise<ClusterTopology> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return topology('redis-cluster-', async (root, servers) => {
    // allSettled: if one fails, the others that did start are still recorded, and so killed.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        launch(root, 'node', freeClusterPort, (port, dir, log) =>
          serverArgs(port, dir, log, [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(root, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '1000',
          ]),
        ),
      ),
    );
    const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    servers.push(...started);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const ports = started.map((server) => server.port);
    try {
      await new Promise<void>((done, fail) =>
        execFile(
          'redis-cli',
          ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
          { timeout: timeoutMs, killSignal: 'SIGKILL' },
          (error, stdout, stderr) =>
            error ? fail(new Error(`redis-cli --cluster create failed: ${error.message}\n${stdout}${stderr}`)) : done(),
        ),
      );
      await until(timeoutMs, `cluster on ${ports.join(', ')} ok on every node`, async () => {
        for (const port of ports) {
          const ok = await withClient(port, async (redis) => {
            const info = (await redis.call('CLUSTER', 'INFO')) as string;
            if (field(info, 'cluster_state') !== 'ok' || field(info, 'cluster_slots_ok') !== '16384') return false;
            if (field(info, 'cluster_known_nodes') !== '6' || field(info, 'cluster_size') !== '3') return false;
            const replication = await redis.info('replication');
            return field(replication, 'role') === 'master' || field(replication, 'master_link_status') === 'up';
          });
          if (!ok) return false;
        }
        return true;
      });
    } catch (error) {
      const logs = await Promise.all(servers.map(async (server) => `--- ${server.port}\n${await tail(server.log, 5)}`));
      throw new Error(`${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    }

    return {
      nodes: ports.map((port) => ({ host: HOST, port })),
      killPrimaryOf: async (key: string) => {
        const alive = servers.filter((server) => !exited(server.child));
        if (!alive.length) throw new Error('no cluster node is running');
        const slot = (await withClient(alive[0].port, (redis) => redis.call('CLUSTER', 'KEYSLOT', key))) as number;
        // Each live node's view of itself: the one that is a primary and owns the slot serves it.
        const owners: Server[] = [];
        for (const server of alive) {
          const text = await withClient(server.port, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>).catch(() => '');
          const self = parseNodes(text).find((node) => node.flags.includes('myself'));
          if (self?.flags.includes('master') && self.slots.some(([from, to]) => from <= slot && slot <= to)) owners.push(server);
        }
        if (owners.length !== 1) {
          throw new Error(`slot ${slot} of ${key} is served by ${owners.length} live primaries (${owners.map((o) => o.port).join(', ')})`);
        }
        await kill(owners[0].child);
        return { host: HOST, port: owners[0].port };
      },
    };
  });
}
