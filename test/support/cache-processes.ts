import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';

const SCRIPT = resolve('test/support/cache-process.mjs');

/** A child process with its own CacheService, sharing Redis (and the key prefix) with its siblings. */
export class CacheProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, (answer: any) => void>();
  readonly loaderStarts: number[] = [];

  private constructor(readonly child: ChildProcess) {
    child.on('message', (message: any) => {
      if (message.event === 'loader-started') this.loaderStarts.push(Date.now());
      if (message.id !== undefined) this.waiting.get(message.id)?.(message);
    });
  }

  static async start(prefix: string): Promise<CacheProcess> {
    const child = fork(SCRIPT, [], {
      env: { ...process.env, CACHE_KEY_PREFIX: prefix, NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((done, fail) => {
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`cache process exited with ${code} before it was ready`)));
      child.on('message', (message: any) => message.event === 'ready' && done());
    });
    child.removeAllListeners('exit');
    return new CacheProcess(child);
  }

  send<T = any>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise((done, fail) => {
      this.waiting.set(id, (answer) => {
        this.waiting.delete(id);
        if (answer.ok) done(answer);
        else fail(new Error(answer.error));
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((done) => this.child.once('exit', done));
    this.child.kill('SIGKILL');
    await exited;
  }
}
