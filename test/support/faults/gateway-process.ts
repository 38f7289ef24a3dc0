import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The log folder of this test run (scripts/run-tests.mjs greps every log in it for the keys the tests were handed). */
function runDir(): string {
  const dir = process.env.TRACKGATE_TEST_RUN_DIR ?? mkdtempSync(join(tmpdir(), 'tg-run-'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * A real trackgate process (`trackgate serve` from the sources, as `npm start` runs it but without the
 * build), on 127.0.0.1 and a port of its own. Its log goes to the run's log folder, so the key-redaction
 * check covers it; `keys` given to recordKeys() are listed beside it.
 */
export class GatewayProcess {
  child!: ChildProcess;
  url!: string;
  readonly logFile: string;
  private readonly id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  private exited!: Promise<void>;

  private constructor(
    readonly env: Record<string, string>,
    private port: number,
  ) {
    this.logFile = join(runDir(), `${this.id}.log`);
  }

  /**
   * `env`: TRACKGATE_* settings (database and Redis URLs, TRACKGATE_SECRET_KEY shared by the instances of one
   * deployment, ...). Resolves once /healthz answers.
   */
  static async start(env: Record<string, string>, options: { port?: number; timeoutMs?: number } = {}): Promise<GatewayProcess> {
    const g = new GatewayProcess(env, options.port ?? (await freePort()));
    await g.spawn(options.timeoutMs ?? 60_000);
    return g;
  }

  private async spawn(timeoutMs: number): Promise<void> {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        TRACKGATE_HOST: '127.0.0.1',
        TRACKGATE_PORT: String(this.port),
        TRACKGATE_LOG_FILE: this.logFile,
        TRACKGATE_LOG_LEVEL: 'debug',
        ...this.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr?.on('data', (b: Buffer) => appendFileSync(this.logFile, b));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.url = `http://127.0.0.1:${this.port}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`trackgate exited with ${this.child.exitCode} while starting; see ${this.logFile}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`trackgate did not answer /healthz within ${timeoutMs} ms; see ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Starts the same instance again (same port and settings) after kill() or stop(). */
  async restart(timeoutMs = 60_000): Promise<void> {
    await this.spawn(timeoutMs);
  }

  /** `kill -9`: no shutdown of any kind, as an OOM kill or a lost machine. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** A graceful stop (SIGTERM), bounded: SIGKILL after `ms`. */
  async stop(ms = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }

  /** Lists keys this instance handed out beside its log, for the run's redaction check. */
  recordKeys(keys: Iterable<string>): void {
    appendFileSync(join(runDir(), `${this.id}.keys`), [...keys].join('\n') + '\n');
  }
}
