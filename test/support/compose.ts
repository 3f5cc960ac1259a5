import { type ChildProcess, execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * docker-compose.yml as the stack specs read it (stack-smoke, stack-cluster): parsed with a real
 * YAML parser, variables given the file's defaults as `docker compose up` gives them without a
 * `.env`, and the services' commands run here as local processes.
 */

export interface ComposeService {
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: Array<string | { target?: string }>;
  profiles?: string[];
  ports?: Array<string | { published?: string | number; target?: string | number }>;
  restart?: string;
}

/** YAML -> JSON with PyYAML (Debian's docker-compose depends on it); no YAML package in node_modules. */
export function loadYaml(file: string): unknown {
  const script = 'import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))))';
  let out: string;
  try {
    out = execFileSync('python3', ['-c', script, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const detail = (error as { stderr?: string; code?: string }).stderr || (error as { code?: string }).code || String(error);
    throw new Error(
      `stack test: parsing ${file} needs python3 with PyYAML (Debian: apt-get install python3-yaml; ` +
        `docker-compose depends on it). It failed: ${String(detail).trim().split('\n').pop()}`,
      { cause: error },
    );
  }
  return JSON.parse(out);
}

/** Compose interpolation with the file's defaults: `${X:-d}` / `${X-d}` -> d, `${X}` -> '', `$$` -> `$`. */
export function interpolate<T>(value: T): T {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (match, _name, fallback?: string) =>
      match === '$$' ? '$' : (fallback ?? ''),
    ) as T;
  }
  if (Array.isArray(value)) return value.map((item) => interpolate(item)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item)])) as T;
  }
  return value;
}

export function environmentOf(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const pairs = Array.isArray(raw) ? raw.map((line) => line.split(/=(.*)/s, 2) as [string, string]) : Object.entries(raw);
  return Object.fromEntries(pairs.map(([key, value]) => [key, value === null || value === undefined ? '' : String(value)]));
}

export function commandOf(service: ComposeService, name: string): string[] {
  const command = service.command;
  if (Array.isArray(command)) return command.map(String);
  if (typeof command === 'string') return command.trim().split(/\s+/);
  throw new Error(`service ${name} has no command`);
}

/** `--flag value` of a redis-server command line (the last one: redis-server keeps the last value). */
export function flag(args: string[], name: string): string | undefined {
  const at = args.lastIndexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

/** A spawned service command, with its output kept for error messages. */
export class ManagedProcess {
  output = '';
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (chunk) => (this.output += chunk));
    child.stderr?.on('data', (chunk) => (this.output += chunk));
  }

  get running(): boolean {
    // No pid: the spawn itself failed (binary missing), so there is nothing to wait for.
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Polls `probe` until it answers true; fails early, with the output, when `target` exits. */
export async function waitFor(what: string, target: ManagedProcess, probe: () => Promise<boolean>, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (!target.running)
      throw new Error(`${target.name} exited (${target.child.exitCode ?? target.child.signalCode}) before ${what}:\n${target.output}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${target.name}: no ${what} in ${limitMs / 1000} s:\n${target.output}`);
}

/** PING without a password, on a bare socket: the first line of the reply. */
export function anonymousPing(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
    socket.setTimeout(3_000, () => socket.destroy(new Error('no reply to PING')));
    socket.once('data', (reply) => {
      socket.destroy();
      done(reply.toString().split('\r\n')[0]);
    });
    socket.once('error', fail);
  });
}
