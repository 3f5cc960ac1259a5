import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from './services.js';

export { freePort };

const MAIN = resolve('dist/apps/worker/main.js');

/** The built worker (`npm test` builds first), started with plain node as compose starts it. */
export class WorkerProcess {
  output = '';
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.stdout?.on('data', (chunk) => (this.output += chunk));
    child.stderr?.on('data', (chunk) => (this.output += chunk));
  }

  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, WORKER_PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const worker = new WorkerProcess(child, port);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${worker.output}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok) return worker;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`worker not ready in 20 s:\n${worker.output}`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill(signal);
    return exited;
  }
}
