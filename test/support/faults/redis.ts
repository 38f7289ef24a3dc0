import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { freePort, waitForPort } from './ports.ts';

/**
 * A redis-server of one test's own, on its own port, so that killing and restarting it disturbs nothing
 * else. No persistence: a restart comes back empty, as a Redis used as a cache usually does.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<PrivateRedis> {
    const r = new PrivateRedis(port ?? (await freePort()));
    await r.startServer();
    return r;
  }

  /** Starts the server on its port (again, after kill()). */
  async startServer(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitForPort(this.port);
  }

  /** SIGKILL: the server vanishes without closing its connections politely (the kernel resets them). */
  async kill(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await exited;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }
}

/** Whether this machine has a redis-server to run one of a test's own. */
export function canRunPrivateRedis(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
