import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const CACHE_PROCESS_SCRIPT = resolve('test/support/cache-process.mjs');

/**
 * A child process driven over IPC: each `send` is a command `{id, cmd, ...args}`, answered by a
 * message with the same id and `ok`; messages with an `event` are events. The child runs with
 * plain node (the built library), whatever loader the parent runs under.
 */
export class IpcProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, (answer: any) => void>();

  private constructor(readonly child: ChildProcess) {
    child.on('message', (message: any) => {
      if (message.id !== undefined) this.waiting.get(message.id)?.(message);
    });
  }

  /** Resolves at the next event `name` the child sends (ask before what causes it). */
  nextEvent(name: string): Promise<void> {
    return new Promise((done) => {
      const listener = (message: any) => {
        if (message.event !== name) return;
        this.child.off('message', listener);
        done();
      };
      this.child.on('message', listener);
    });
  }

  static async start(script: string, env: Record<string, string>): Promise<IpcProcess> {
    const child = fork(script, [], {
      execArgv: [],
      env: { ...process.env, ...env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((done, fail) => {
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`${script} exited with ${code} before it was ready`)));
      child.on('message', (message: any) => message.event === 'ready' && done());
    });
    child.removeAllListeners('exit');
    return new IpcProcess(child);
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

  /** With `closeCommand`, asks the child to close first (5 s), then kills what is left. */
  async stop(closeCommand?: string): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((done) => this.child.once('exit', done));
    if (closeCommand) {
      await Promise.race([this.send(closeCommand).catch(() => undefined), sleep(5_000)]);
      await Promise.race([exited, sleep(2_000)]);
    }
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await exited;
  }
}

/** A child process with its own CacheService, sharing Redis (and the key prefix) with its siblings. */
export const CacheProcess = {
  start: (prefix: string) => IpcProcess.start(CACHE_PROCESS_SCRIPT, { CACHE_KEY_PREFIX: prefix }),
};
export type CacheProcess = IpcProcess;
