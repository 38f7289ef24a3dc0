import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

/** Where Debian keeps the server binaries; PG_BIN overrides. */
function pgBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'pg_ctl'))) return join(base, v, 'bin');
  return '';
}

/** Whether this machine can run a PostgreSQL of a test's own (the server binaries are there). */
export function canRunPrivatePostgres(): boolean {
  return pgBin() !== '' && (process.getuid?.() !== 0 || hasPostgresUser());
}

function hasPostgresUser(): boolean {
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A PostgreSQL cluster of one test's own: `initdb` into a temporary folder, its own port on 127.0.0.1, so
 * that crashing it (`pg_ctl -m immediate stop`, as a power cut or an OOM kill does) disturbs nothing else.
 * PostgreSQL refuses to run as root: as root (CI), it runs as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** A URL of the `postgres` database; `database(name)` for another. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'tg-pg-'));
    if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
    const pg = new PrivatePostgres(dir, await freePort());
    pg.run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await pg.startServer();
    return pg;
  }

  /** The command line of a server tool, as the `postgres` user when this process is root. */
  private command(tool: string, args: string[]): [string, string[]] {
    const bin = join(pgBin(), tool);
    return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  }

  private run(tool: string, args: string[]): string {
    const [cmd, argv] = this.command(tool, args);
    return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir }).toString();
  }

  /** As run(), without blocking the event loop: a load running in this process keeps running meanwhile. */
  private async runInBackground(tool: string, args: string[]): Promise<void> {
    const [cmd, argv] = this.command(tool, args);
    await promisify(execFile)(cmd, argv, { cwd: this.dir });
  }

  /** Starts the server (again, after a stop or a crash: it recovers from its WAL). */
  async startServer(): Promise<void> {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c full_page_writes=off -c max_connections=200`;
    await this.runInBackground('pg_ctl', ['-D', join(this.dir, 'data'), '-o', opts, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
    await waitForPort(this.port);
  }

  /** Kills the server without a clean shutdown (`immediate`): connections are cut, nothing is flushed politely. */
  crash(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  /** crash(), without blocking the event loop (a load generator in the same process keeps its clock). */
  async crashInBackground(): Promise<void> {
    await this.runInBackground('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  /** A clean shutdown (`fast`): open sessions are told to end (57P01 admin_shutdown). */
  stop(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']);
  }

  /** Stops the server if it runs and deletes its files. */
  destroy(): void {
    try {
      this.crash();
    } catch {
      /* not running */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
