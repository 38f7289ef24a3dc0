/**
 * What the bench's scenarios share (bench/run.ts, bench/faults.ts): how the gateway is started (as
 * `npm start` starts it), its resident memory, small statistics, the machine's description and the
 * BENCHMARKS.md sections each scenario rewrites between its own markers.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/net.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** `npm start`'s command line (package.json): the gateway runs exactly as `npm start` runs it, the compiled build included. */
const START_SCRIPT = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
/** Node flags for the gateway process: by default those of `npm start`. */
const START_FLAGS = (START_SCRIPT.match(/--[\w-]+=\S+/g) ?? []).join(' ');
/** The script `npm start` runs (dist/cli/main.js, built by prestart). */
export const START_ENTRY = join(ROOT, /\s(\S+\.js|bin\/trackgate)\s+serve\b/.exec(START_SCRIPT)?.[1] ?? 'bin/trackgate');
export const GATEWAY_FLAGS = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? START_FLAGS).split(' ').filter(Boolean);
export const RESULTS = join(ROOT, 'bench', '.results');

export const log = (msg: string) => process.stdout.write(`[bench] ${msg}\n`);
export const basic = (key: string) => 'Basic ' + Buffer.from('api:' + key).toString('base64');

/** Builds dist/ (as `npm start`'s prestart does) when the gateway runs from it. */
export function buildIfNeeded(): void {
  if (START_ENTRY.includes(`${join(ROOT, 'dist')}`)) {
    log('building dist/ (as npm start does)');
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  }
}

export { freePort };

export async function waitHttp(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Resident memory of a process in MB, from /proc (null where there is no /proc). */
export function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system, all threads) of a process in ms, from /proc. */
export function cpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

export interface GatewayOptions {
  /** What to poll until it answers; a lean path keeps the process from ever serving an Express request. */
  readyPath?: string;
  /** Node flags before those of `npm start` (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Told the process id once it runs (for the bench's CPU accounting). */
  onSpawn?: (pid: number) => void;
}

/** A gateway process started as `npm start` starts it, on a free port of 127.0.0.1, its RSS sampled every 200 ms. */
export class Gateway {
  child!: ChildProcess;
  url!: string;
  peakRss = 0;
  private sampler: NodeJS.Timeout | null = null;
  private windowPeak = 0;

  static async start(env: NodeJS.ProcessEnv, options: GatewayOptions = {}): Promise<Gateway> {
    const g = new Gateway();
    const port = await freePort();
    const args = [...(options.nodeArgs ?? []), ...GATEWAY_FLAGS, START_ENTRY, 'serve'];
    g.child = spawn(process.execPath, args, { env: { ...env, TRACKGATE_PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    g.url = `http://127.0.0.1:${port}`;
    if (g.child.pid) options.onSpawn?.(g.child.pid);
    try {
      await waitHttp(`${g.url}${options.readyPath ?? '/healthz'}`, g.child, 'the gateway');
    } catch (err) {
      await stop(g.child);
      throw err;
    }
    g.sampler = setInterval(() => g.sample(), 200);
    return g;
  }

  private sample(): void {
    const v = rssMb(this.child.pid);
    if (v !== null) {
      this.peakRss = Math.max(this.peakRss, v);
      this.windowPeak = Math.max(this.windowPeak, v);
    }
  }

  /** Peak RSS since the last call. */
  takeWindowPeak(): number {
    this.sample();
    const v = this.windowPeak;
    this.windowPeak = 0;
    return v;
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    this.sample();
    await stop(this.child);
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The p-th percentile (0–100) of sorted values, nearest rank; NaN for none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function machine(): Record<string, string> {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  const model = /Model name:\s*(.+)/.exec(sh('lscpu', []))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return { nproc: sh('nproc', []), cpu: model, node: process.version, os: sh('uname', ['-sr']), memory: `${Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1048576)} GiB` };
}

/** Replaces the text between `begin` and `end` in BENCHMARKS.md (appends the markers when absent). */
export function writeSection(begin: string, end: string, text: string): void {
  const file = join(ROOT, 'BENCHMARKS.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
  const next = existing.includes(begin) && existing.includes(end) ? existing.slice(0, existing.indexOf(begin) + begin.length) + '\n' + text + '\n' + existing.slice(existing.indexOf(end)) : `${existing}\n${begin}\n${text}\n${end}\n`;
  writeFileSync(file, next);
}
