/**
 * `npm run bench`: trackgate's hot paths against a bare node:http server, measured
 * with autocannon (50 connections) on this machine, the gateway in its own
 * process, with 1 000 and then 1 000 000 API keys in the (SQLite) database.
 * Writes the figures into BENCHMARKS.md between the bench markers and the raw
 * results to bench/.results/.
 *
 * BENCH_DURATION (seconds per run, default 3), BENCH_ROUNDS (default 7),
 * BENCH_KEYS_LARGE (default 1000000), BENCH_ONLY (a comma-separated list of
 * runs), BENCH_GATEWAY_NODE_FLAGS (e.g. "--max-old-space-size=192") and BENCH_CPU_PROF=1
 * (write .cpuprofile files of the gateway to bench/.results/prof) change the
 * run; only a full run should be recorded in BENCHMARKS.md. Then the fault scenario on PostgreSQL and
 * Redis (bench/faults.ts; BENCH_ONLY=faults, or `npm run bench:faults`, runs it alone).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import SQLite from 'better-sqlite3';
import autocannon from 'autocannon';
import type { Request as AcRequest, Result } from 'autocannon';
import { configSchema } from '../src/config/config.ts';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, buildIfNeeded, cpuMs, freePort, Gateway, GATEWAY_FLAGS, log, machine, median, RESULTS, ROOT, START_ENTRY, stop, writeSection } from './common.ts';
import { runFaults } from './faults.ts';

let verifyResponseBytes = 0;
const DURATION = Number(process.env.BENCH_DURATION ?? 3);
const WARMUP = Math.min(3, Math.max(1, Math.round(DURATION / 5)));
const CONNECTIONS = 50;
const SMALL = 1_000;
const LARGE = Number(process.env.BENCH_KEYS_LARGE ?? 1_000_000);
const DISTINCT = 1_000;
const CPU_PROF = process.env.BENCH_CPU_PROF === '1';
const VIEWER = JSON.stringify({ query: 'query Viewer{ viewer { id entity username email flags teams { edges { node { name } } } } }', variables: {} });

interface Row {
  keys: number;
  name: string;
  target: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  gatewayRssMb: number | null;
  /** req/s of each round. */
  samples: number[];
  /** CPU time of the serving process per request (median of the rounds), in µs. */
  cpuUsPerReq: number | null;
}


/** A gateway for the runs below: with BENCH_CPU_PROF=1 it writes its CPU profile; its CPU time counts as the bench's own. */
function startGateway(env: NodeJS.ProcessEnv, label: string, readyPath = '/healthz'): Promise<Gateway> {
  return Gateway.start(env, {
    readyPath,
    nodeArgs: CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS, 'prof', label)}`] : [],
    onSpawn: (pid) => {
      ownPids.add(pid);
      pidNames.set(pid, `gateway ${label}`);
    },
  });
}

async function load(opts: { url: string; method?: string; headers?: Record<string, string>; body?: string; requests?: AcRequest[] }, duration: number): Promise<Result> {
  return autocannon({ url: opts.url, connections: CONNECTIONS, duration, pipelining: 1, method: opts.method ?? 'GET', headers: opts.headers, body: opts.body, requests: opts.requests, timeout: 10 });
}

/** BENCH_ONLY=verify,proxy runs only those (for profiling); the report is then partial. */
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** Share of one core that processes outside the benchmark may use during a run before it is repeated. */
const FOREIGN_LIMIT = Number(process.env.BENCH_FOREIGN_LIMIT ?? 0.15);
let retried = 0;
let lastForeign = 0;
let contaminated = 0;

interface Scenario {
  name: string;
  target: string;
  opts: Parameters<typeof load>[0];
  gateway: Gateway | null;
  /** The process that serves the requests (for its CPU time per request). */
  pid: number | undefined;
}

/** Busy CPU time of the whole machine in ms, from /proc/stat. */
function machineBusyMs(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return ((f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) * 1000) / 100;
  } catch {
    return null;
  }
}

/** The benchmark's own processes: this one (autocannon) and every server it started. */
const ownPids = new Set<number>([process.pid]);

/** Share of one core used by processes outside the benchmark during `ms`. */
async function foreignShare(ms: number): Promise<number> {
  const own0 = [...ownPids].reduce((n, pid) => n + (cpuMs(pid) ?? 0), 0);
  const busy0 = machineBusyMs();
  await new Promise((res) => setTimeout(res, ms));
  const busy1 = machineBusyMs();
  const own1 = [...ownPids].reduce((n, pid) => n + (cpuMs(pid) ?? 0), 0);
  return busy0 !== null && busy1 !== null ? (busy1 - busy0 - (own1 - own0)) / ms : 0;
}

/** Waits (up to two minutes) until the rest of the machine is quiet. */
async function waitForQuiet(): Promise<void> {
  const deadline = Date.now() + 120_000;
  let said = false;
  while (Date.now() < deadline) {
    const f = await foreignShare(1000);
    if (f <= FOREIGN_LIMIT) return;
    if (!said) log(`waiting for other processes to quiet down (${(f * 100).toFixed(0)}% of a core)`);
    said = true;
  }
}

/** Names for the log line that says which of the bench's own servers were busy during a run. */
const pidNames = new Map<number, string>();

/** CPU time (ms) of each thread of a process, by thread id, from /proc (empty where there is none). */
function threadCpuMs(pid: number | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (!pid) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        out.set(Number(tid), ((Number(f[11]) + Number(f[12])) * 1000) / 100);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/**
 * The management worker's thread id in each gateway, learnt from its first `me` run (the thread other
 * than the main one that was busiest): every thread is called "node" in /proc, so this is how the log
 * line can tell the worker from V8's and libuv's helper threads.
 */
const managementTid = new Map<number, number>();

/** CPU time as a share of one core over a run of `runMs`, for the log line. */
const shareOfCore = (cpuMs: number, runMs: number) => `${((cpuMs / runMs) * 100).toFixed(0)}%`;

/** How a run's CPU time split over the serving process's threads, for the log line. */
function threadSplit(pid: number, before: Map<number, number>, after: Map<number, number>, ms: number, isManagementRun: boolean): string {
  const share = (x: number) => shareOfCore(x, ms);
  let main = 0;
  let busiest: [number, number] | null = null;
  let others = 0;
  for (const [tid, t] of after) {
    const d = t - (before.get(tid) ?? 0);
    if (tid === pid) main = d;
    else {
      others += d;
      if (!busiest || d > busiest[1]) busiest = [tid, d];
    }
  }
  if (isManagementRun && busiest && !managementTid.has(pid)) managementTid.set(pid, busiest[0]);
  const worker = managementTid.get(pid);
  const workerMs = worker !== undefined && after.has(worker) ? after.get(worker)! - (before.get(worker) ?? 0) : null;
  if (workerMs !== null) return `, server main thread ${share(main)} + management worker ${share(workerMs)} + other threads ${share(others - workerMs)}`;
  return `, server main thread ${share(main)} + other threads ${share(others)}${busiest && busiest[1] / ms > 0.05 ? ` (busiest: thread ${busiest[0]}, ${share(busiest[1])})` : ''}`;
}

/**
 * Runs the scenarios in interleaved rounds (A B C, A B C, ...) and keeps the
 * median of each: on a small shared machine a single run is at the mercy of
 * whatever else ran in that moment, and interleaving spreads that over all.
 */
async function measureRounds(rows: Row[], keys: number, scenarios: Scenario[]): Promise<void> {
  const chosen = scenarios.filter((s) => !ONLY || ONLY.has(s.name));
  const runs = new Map<string, Result[]>();
  const rss = new Map<string, number>();
  const cpuPerReq = new Map<string, number[]>();
  let threadsNote: string;
  for (let round = 0; round < ROUNDS; round++) {
    for (const sc of chosen) {
      await load(sc.opts, WARMUP);
      sc.gateway?.takeWindowPeak();
      let r: Result;
      let cpu0: number | null;
      let cpu1: number | null;
      for (let attempt = 0; ; attempt++) {
        await waitForQuiet();
        // A run during which something else on the machine used a noticeable share of the CPU is done again (at most 3 times).
        const each0 = new Map([...ownPids].map((pid) => [pid, cpuMs(pid) ?? 0]));
        const own0 = [...each0.values()].reduce((a, b) => a + b, 0);
        const busy0 = machineBusyMs();
        cpu0 = cpuMs(sc.pid);
        const threads0 = threadCpuMs(sc.pid);
        r = await load(sc.opts, DURATION);
        cpu1 = cpuMs(sc.pid);
        const threads1 = threadCpuMs(sc.pid);
        const busy1 = machineBusyMs();
        const each1 = new Map([...ownPids].map((pid) => [pid, cpuMs(pid) ?? 0]));
        const own1 = [...each1.values()].reduce((a, b) => a + b, 0);
        // The server under test's main thread and its other threads, and any other server of the bench that
        // was busy meanwhile (they are not "other processes", so a busy one would otherwise go unseen).
        threadsNote = sc.pid && threads1.size ? threadSplit(sc.pid, threads0, threads1, DURATION * 1000, sc.name === 'me') : '';
        const busyOwn = [...each1]
          .filter(([pid]) => pid !== process.pid && pid !== sc.pid && pidNames.get(pid) !== 'upstream')
          .map(([pid, ms]) => [pid, ms - (each0.get(pid) ?? ms)] as const)
          .filter(([, ms]) => ms / (DURATION * 1000) > 0.05);
        if (busyOwn.length) threadsNote += `, busy meanwhile: ${busyOwn.map(([pid, ms]) => `${pidNames.get(pid) ?? pid} ${shareOfCore(ms, DURATION * 1000)}`).join(', ')}`;
        const foreign = busy0 !== null && busy1 !== null ? (busy1 - busy0 - (own1 - own0)) / (DURATION * 1000) : 0;
        lastForeign = foreign;
        if (foreign <= FOREIGN_LIMIT || attempt >= 3) {
          if (foreign > FOREIGN_LIMIT) contaminated++;
          break;
        }
        retried++;
        log(`${sc.name}: other processes used ${(foreign * 100).toFixed(0)}% of a core during the run; running it again`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      runs.set(sc.name, [...(runs.get(sc.name) ?? []), r]);
      if (cpu0 !== null && cpu1 !== null && r.requests.total > 0) cpuPerReq.set(sc.name, [...(cpuPerReq.get(sc.name) ?? []), ((cpu1 - cpu0) * 1000) / r.requests.total]);
      const windowRss = sc.gateway ? sc.gateway.takeWindowPeak() : null;
      if (windowRss !== null) rss.set(sc.name, Math.max(rss.get(sc.name) ?? 0, windowRss));
      log(`${keys.toLocaleString('en-US')} keys · round ${round + 1}/${ROUNDS} · ${sc.name}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}${r.errors + r.timeouts ? `, ${r.errors + r.timeouts} errors` : ''}${windowRss !== null ? `, gateway RSS ${windowRss.toFixed(0)} MB` : ''}, others ${(lastForeign * 100).toFixed(0)}% of a core${threadsNote}`);
    }
  }
  for (const sc of chosen) {
    const rs = runs.get(sc.name)!;
    rows.push({
      keys,
      name: sc.name,
      target: sc.target,
      rps: median(rs.map((r) => r.requests.average)),
      p50: median(rs.map((r) => r.latency.p50)),
      p99: median(rs.map((r) => r.latency.p99)),
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      errors: rs.reduce((n, r) => n + r.errors + r.timeouts, 0),
      gatewayRssMb: sc.gateway ? (rss.get(sc.name) ?? null) : null,
      samples: rs.map((r) => Math.round(r.requests.average)),
      cpuUsPerReq: cpuPerReq.has(sc.name) ? median(cpuPerReq.get(sc.name)!) : null,
    });
  }
}

/** Inserts API key rows straight into the database, in big transactions. Real keys when `real`, otherwise rows with unique hashes only. */
function seedKeys(dbFile: string, orgId: string, userId: string, count: number, offset: number, real: boolean): string[] {
  const db = new SQLite(dbFile);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    'INSERT INTO api_keys (id, org_id, owner_type, user_id, service_account_id, name, key_id, key_hash, created_at, created_by, last_used_at, expires_at, revoked_at, rotated_from_id) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)',
  );
  const now = new Date().toISOString();
  const secrets: string[] = [];
  const BATCH = 50_000;
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const seq = offset + start + i;
        if (real) {
          const g = generateKey('user');
          secrets.push(g.key);
          insert.run(randomUUID(), orgId, 'user', userId, `bench-${seq}`, g.keyId, g.hash, now, userId);
        } else {
          const hash = createHash('sha256').update(`bench-filler-${seq}`).digest('hex');
          insert.run(randomUUID(), orgId, 'user', userId, `filler-${seq}`, `tgp-f${seq.toString(36)}`, hash, now, userId);
        }
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return secrets;
}

function countKeys(dbFile: string): number {
  const db = new SQLite(dbFile, { readonly: true });
  const n = (db.prepare('SELECT count(*) AS n FROM api_keys').get() as { n: number }).n;
  db.close();
  return n;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? (a / b).toFixed(2) : 'n/a');

/**
 * The ratio of two runs measured in the same rounds: the median of the
 * per-round ratios (each round runs the two back to back, so a slow spell of
 * the shared machine hits both sides of a pair), with the lowest and highest
 * round in brackets.
 */
function pairedRatio(a: Row | undefined, b: Row | undefined): string {
  const rs = roundRatios(a, b);
  if (!rs) return ratio(a?.rps, b?.rps);
  return `${median(rs).toFixed(2)} (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`;
}

/**
 * a ÷ b round by round; null when the two were not measured in the same rounds. A round in which
 * either side served nothing (a server that stopped answering) is left out, not counted as 0 or ∞.
 */
function roundRatios(a: Row | undefined, b: Row | undefined): number[] | null {
  if (!a || !b || a.samples.length !== b.samples.length || a.samples.length === 0) return null;
  const rs = a.samples.flatMap((x, i) => (x > 0 && b.samples[i]! > 0 ? [x / b.samples[i]!] : []));
  return rs.length ? rs : null;
}

function report(rows: Row[], m: Record<string, string>, peakRss: number, started: Date, seedSeconds: number, loadBefore: string, fullCache: { keys: number; peakRss: number } | null): string {
  const find = (keys: number, name: string) => rows.find((r) => r.keys === keys && r.name === name);
  const lines: string[] = [];
  lines.push(`Measured ${started.toISOString()} with \`npm run bench\` (\`node --import tsx bench/run.ts\`): autocannon, ${CONNECTIONS} connections, no pipelining, ${ROUNDS} interleaved rounds of ${DURATION} s per run (each after a ${WARMUP} s warm-up), the median of the rounds shown; a ratio between two runs is the median of their per-round ratios (lowest–highest round in brackets), since the two run back to back in every round; a run during which other processes on the machine used more than ${Math.round(FOREIGN_LIMIT * 100)}% of a core was run again (${retried} repeated, ${contaminated} still disturbed after 3 tries); the load generator and every server on this one machine, each server in its own process; the gateway started as \`node ${GATEWAY_FLAGS.length ? GATEWAY_FLAGS.join(' ') + ' ' : ''}${relative(ROOT, START_ENTRY)} serve\` (SQLite, log level ${process.env.BENCH_LOG_LEVEL ?? 'info'} to /dev/null). Load average before the run: ${loadBefore}.`);
  lines.push('');
  lines.push(`Machine: ${m.cpu}, \`nproc\` = ${m.nproc}, ${m.memory}, ${m.os}, Node.js ${m.node}. Database: SQLite (WAL) file; ${LARGE.toLocaleString('en-US')} key rows seeded in ${seedSeconds.toFixed(1)} s.`);
  lines.push('');
  lines.push('| keys in DB | run | target | req/s (median) | rounds req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx | errors | gateway RSS peak MB |');
  lines.push('| ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) lines.push(`| ${r.keys.toLocaleString('en-US')} | ${r.name} | ${r.target} | ${fmt(r.rps)} | ${r.samples.map(fmt).join(' / ')} | ${r.p50} | ${r.p99} | ${r.cpuUsPerReq === null ? '–' : r.cpuUsPerReq.toFixed(1)} | ${r.non2xx} | ${r.errors} | ${r.gatewayRssMb === null ? '–' : r.gatewayRssMb.toFixed(0)} |`);
  lines.push('');
  lines.push('| ratio | target | ' + [SMALL, LARGE].map((k) => `${k.toLocaleString('en-US')} keys`).join(' | ') + ' |');
  lines.push('| --- | --- | ---: | ---: |');
  const ratioRow = (label: string, target: string, a: string, b: string) =>
    lines.push(`| ${label} | ${target} | ${[SMALL, LARGE].map((k) => pairedRatio(find(k, a), find(k, b))).join(' | ')} |`);
  ratioRow('/auth/verify ÷ bare node:http', '≥ 0.8', 'verify', 'bare');
  ratioRow('/auth/verify on a gateway that has served nothing else ÷ bare', '–', 'verify-lean-only', 'bare-2');
  ratioRow('bare with the same headers ÷ bare (the cost of the answer itself)', '–', 'bare-same-headers', 'bare');
  ratioRow('/auth/verify ÷ bare with the same headers', '–', 'verify', 'bare-same-headers');
  ratioRow('proxied ÷ upstream directly', '≥ 0.3', 'proxy', 'upstream-direct');
  ratioRow('reference undici proxy (no auth) ÷ upstream directly', '–', 'proxy-reference', 'upstream-direct');
  ratioRow('proxied through trackgate ÷ reference undici proxy', '–', 'proxy', 'proxy-reference');
  ratioRow('proxied, assertion only (TRACKGATE_IDENTITY_HEADERS=assertion) ÷ upstream directly', '≥ 0.3', 'proxy-assertion-only', 'upstream-direct-2');
  ratioRow('/auth/verify, assertion only ÷ bare node:http', '≥ 0.8', 'verify-assertion-only', 'bare-3');
  ratioRow('GET /gateway/v1/me (Express) ÷ bare', '–', 'me', 'bare');
  const cpuRow = (label: string, a: string, b: string) =>
    lines.push(`| ${label} | – | ${[SMALL, LARGE].map((k) => ratio(find(k, b)?.cpuUsPerReq ?? undefined, find(k, a)?.cpuUsPerReq ?? undefined)).join(' | ')} |`);
  cpuRow('server CPU per request: bare ÷ /auth/verify (capacity ratio, load generator excluded)', 'verify', 'bare');
  cpuRow('server CPU per request: upstream ÷ gateway, proxied (gateway process only)', 'proxy', 'upstream-direct');
  lines.push(`| /auth/verify uncached ÷ bare (measured after the others, so a ratio of medians) | – | ${[SMALL, LARGE].map((k) => ratio(find(k, 'verify-uncached')?.rps, find(k, 'bare')?.rps)).join(' | ')} |`);
  lines.push('');
  // Each side is first divided by its baseline from the same rounds, so that a slower spell of the
  // machine during one half of the run does not read as a drop (the raw req/s are in the table above).
  const norm = (keys: number, a: string, b: string) => {
    const rs = roundRatios(find(keys, a), find(keys, b));
    return rs ? median(rs) : undefined;
  };
  lines.push(`| ${LARGE.toLocaleString('en-US')} keys ÷ ${SMALL.toLocaleString('en-US')} keys, each as a ratio to its baseline | target | ratio |`);
  lines.push('| --- | --- | ---: |');
  for (const [n, base] of [['verify', 'bare'], ['verify-lean-only', 'bare-2'], ['proxy', 'upstream-direct'], ['proxy-assertion-only', 'upstream-direct-2'], ['verify-assertion-only', 'bare-3'], ['me', 'bare'], ['verify-uncached', 'bare']] as const) {
    lines.push(`| ${n} (÷ ${base}) | no drop | ${ratio(norm(LARGE, n, base), norm(SMALL, n, base))} |`);
  }
  lines.push('');
  const dead = rows.filter((r) => r.samples.includes(0));
  if (dead.length) lines.push(`Rounds with 0 req/s (a server that stopped answering) are left out of the ratios: ${dead.map((r) => `${r.name} at ${r.keys.toLocaleString('en-US')} keys (${r.samples.filter((x) => x === 0).length} of ${r.samples.length})`).join(', ')}.`, '');
  lines.push(`The /auth/verify answer carries ${verifyResponseBytes} bytes of headers (identity headers and the signed assertion) besides the status line, Date and Connection; the bare server's answer carries about 60.`);
  lines.push('');
  lines.push(`Gateway resident memory, sampled every 200 ms for the whole run: peak **${peakRss.toFixed(0)} MB** (target < 256 MB)${fullCache ? `; of that, the gateway with a full key cache (${fullCache.keys.toLocaleString('en-US')} keys, each verified once, then ${DURATION} s each of proxy, /auth/verify and management load): ${fullCache.peakRss.toFixed(0)} MB` : ''}.`);
  return lines.join('\n');
}

/** The runs on SQLite: the hot paths against their baselines, at 1 000 and 1 000 000 keys. */
async function hotPaths(): Promise<void> {
  const started = new Date();
  const loadBefore = existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'unknown';
  mkdirSync(RESULTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'trackgate-bench-'));
  const dbFile = join(dir, 'trackgate.db');
  const children: ChildProcess[] = [];
  const gateways: Gateway[] = [];
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TRACKGATE_DATABASE_URL: `sqlite:${dbFile}`,
      TRACKGATE_DATA_DIR: dir,
      TRACKGATE_HOST: '127.0.0.1',
      TRACKGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      TRACKGATE_AUTH_FAILURE_LIMIT: '1000000',
      TRACKGATE_CONFIG_DIR: join(dir, 'no-config'),
    };
    for (const k of Object.keys(env)) if (k.startsWith('TRACKGATE_') && !['TRACKGATE_DATABASE_URL', 'TRACKGATE_DATA_DIR', 'TRACKGATE_HOST', 'TRACKGATE_LOG_LEVEL', 'TRACKGATE_AUTH_FAILURE_LIMIT', 'TRACKGATE_CONFIG_DIR'].includes(k) && !k.startsWith('TRACKGATE_TEST_') && !k.startsWith('TRACKGATE_BENCH_')) delete env[k];

    log('bootstrapping an organization and its admin');
    const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'trackgate'), 'bootstrap', '--email', 'bench@bench.example', '--org', 'bench', '--plan', 'enterprise', '--json'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const boot = JSON.parse(out) as { api_key: string; user: { id: string } };
    const sqlite = new SQLite(dbFile, { readonly: true });
    const orgId = (sqlite.prepare("SELECT id FROM orgs WHERE slug = 'bench'").get() as { id: string }).id;
    sqlite.close();
    const realKeys = [boot.api_key, ...seedKeys(dbFile, orgId, boot.user.id, DISTINCT - 1, 0, true)];
    const small = countKeys(dbFile);
    if (small !== SMALL) throw new Error(`expected ${SMALL} keys, found ${small}`);

    const bare = spawn(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs'), String(await freePort())], { stdio: ['ignore', 'pipe', 'inherit'] });
    const upstream = spawn(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs'), String(await freePort())], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(bare, upstream);
    for (const c of [bare, upstream]) if (c.pid) ownPids.add(c.pid);
    if (bare.pid) pidNames.set(bare.pid, 'bare');
    if (upstream.pid) pidNames.set(upstream.pid, 'upstream');
    const portOf = (c: ChildProcess) => new Promise<number>((resolve) => c.stdout!.once('data', (d: Buffer) => resolve(Number(/listening (\d+)/.exec(d.toString())![1]))));
    const bareUrl = `http://127.0.0.1:${await portOf(bare)}`;
    const upstreamUrl = `http://127.0.0.1:${await portOf(upstream)}`;
    const refProxy = spawn(process.execPath, [join(ROOT, 'bench', 'undici-proxy.mjs'), String(await freePort())], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_UPSTREAM: upstreamUrl } });
    children.push(refProxy);
    if (refProxy.pid) ownPids.add(refProxy.pid);
    if (refProxy.pid) pidNames.set(refProxy.pid, 'reference proxy');
    const refProxyUrl = `http://127.0.0.1:${await portOf(refProxy)}`;
    const gwEnv = { ...env, TRACKGATE_UPSTREAM_URL: upstreamUrl };

    const rows: Row[] = [];
    let peakRss = 0;
    const auth = { authorization: basic(boot.api_key) };
    const distinct: AcRequest[] = [
      {
        method: 'GET',
        path: '/auth/verify',
        setupRequest: (req) => {
          req.headers = { authorization: basic(realKeys[Math.floor(Math.random() * realKeys.length)]!) };
          return req;
        },
      },
    ];

    let seedSeconds = 0;
    let sameHeadersUrl: string | null = null;
    let controlPid: number | undefined;
    for (const keys of [SMALL, LARGE]) {
      if (keys !== SMALL) {
        log(`seeding ${(keys - SMALL).toLocaleString('en-US')} more key rows`);
        const t = Date.now();
        seedKeys(dbFile, orgId, boot.user.id, keys - SMALL, SMALL, false);
        seedSeconds = (Date.now() - t) / 1000;
        const n = countKeys(dbFile);
        if (n !== keys) throw new Error(`expected ${keys} keys, found ${n}`);
        log(`seeded in ${seedSeconds.toFixed(1)} s`);
      }
      const gw = await startGateway(gwEnv, `${keys}`);
      gateways.push(gw);
      if (!sameHeadersUrl) {
        // The control for /auth/verify: a bare server sending the very headers /auth/verify sends (identity headers and the signed assertion).
        const sample = await fetch(`${gw.url}/auth/verify`, { headers: auth });
        const list: string[] = [];
        sample.headers.forEach((v, k) => {
          if (!['date', 'connection', 'keep-alive'].includes(k)) list.push(k, v);
        });
        const control = spawn(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs'), String(await freePort())], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_HEADERS: JSON.stringify(list) } });
        children.push(control);
        if (control.pid) ownPids.add(control.pid);
        if (control.pid) pidNames.set(control.pid, 'bare-same-headers');
        sameHeadersUrl = `http://127.0.0.1:${await portOf(control)}`;
        controlPid = control.pid;
        verifyResponseBytes = list.reduce((n, x) => n + x.length, 0) + list.length * 2;
      }
      await measureRounds(rows, keys, [
        { name: 'bare', target: 'bare node:http, GET /', opts: { url: bareUrl }, gateway: null, pid: bare.pid },
        { name: 'verify', target: 'trackgate GET /auth/verify, valid key', opts: { url: `${gw.url}/auth/verify`, headers: auth }, gateway: gw, pid: gw.child.pid },
        { name: 'bare-same-headers', target: 'bare node:http sending the headers /auth/verify sends', opts: { url: sameHeadersUrl! }, gateway: null, pid: controlPid },
        { name: 'upstream-direct', target: 'upstream directly, POST /graphql', opts: { url: `${upstreamUrl}/graphql`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: VIEWER }, gateway: null, pid: upstream.pid },
        { name: 'proxy', target: 'through trackgate, POST /graphql', opts: { url: `${gw.url}/graphql`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: VIEWER }, gateway: gw, pid: gw.child.pid },
        { name: 'proxy-reference', target: 'reference: bare undici Pool proxy, no auth, POST /graphql', opts: { url: `${refProxyUrl}/graphql`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: VIEWER }, gateway: null, pid: refProxy.pid },
        { name: 'me', target: 'trackgate GET /gateway/v1/me (Express, in the management worker)', opts: { url: `${gw.url}/gateway/v1/me`, headers: auth }, gateway: gw, pid: gw.child.pid },
      ]);
      await gw.stop();
      peakRss = Math.max(peakRss, gw.peakRss);
      // /auth/verify on a gateway that has served nothing else (no proxied, no management request): the
      // control for what other traffic leaves behind in the hot paths' isolate. Express's objects used to
      // (V8's inline caches in Node's HTTP code turn megamorphic); the management API now runs in its own
      // worker thread, so the two verify runs should agree (see BENCHMARKS.md).
      const leanOnly = await startGateway(gwEnv, `${keys}-lean-only`, '/.well-known/jwks.json');
      gateways.push(leanOnly);
      await measureRounds(rows, keys, [
        { name: 'bare-2', target: 'bare node:http, GET / (paired with the next run)', opts: { url: bareUrl }, gateway: null, pid: bare.pid },
        { name: 'verify-lean-only', target: 'trackgate GET /auth/verify, valid key, on a gateway that has served nothing else', opts: { url: `${leanOnly.url}/auth/verify`, headers: auth }, gateway: leanOnly, pid: leanOnly.child.pid },
      ]);
      await leanOnly.stop();
      peakRss = Math.max(peakRss, leanOnly.peakRss);
      // TRACKGATE_IDENTITY_HEADERS=assertion: the signed assertion is the only identity header (for an
      // upstream that verifies it), upstream and in /auth/verify's answer; each paired with its baseline.
      const lean = await startGateway({ ...gwEnv, TRACKGATE_IDENTITY_HEADERS: 'assertion' }, `${keys}-assertion-only`);
      gateways.push(lean);
      await measureRounds(rows, keys, [
        { name: 'upstream-direct-2', target: 'upstream directly, POST /graphql (paired with the next run)', opts: { url: `${upstreamUrl}/graphql`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: VIEWER }, gateway: null, pid: upstream.pid },
        { name: 'proxy-assertion-only', target: 'through trackgate, POST /graphql, TRACKGATE_IDENTITY_HEADERS=assertion', opts: { url: `${lean.url}/graphql`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: VIEWER }, gateway: lean, pid: lean.child.pid },
        { name: 'bare-3', target: 'bare node:http, GET / (paired with the next run)', opts: { url: bareUrl }, gateway: null, pid: bare.pid },
        { name: 'verify-assertion-only', target: 'trackgate GET /auth/verify, valid key, TRACKGATE_IDENTITY_HEADERS=assertion', opts: { url: `${lean.url}/auth/verify`, headers: auth }, gateway: lean, pid: lean.child.pid },
      ]);
      await lean.stop();
      peakRss = Math.max(peakRss, lean.peakRss);
      // The same, with the key cache off: every request is one indexed lookup among `keys` rows.
      const cold = await startGateway({ ...gwEnv, TRACKGATE_KEY_CACHE_TTL_SECONDS: '0' }, `${keys}-uncached`);
      gateways.push(cold);
      await measureRounds(rows, keys, [
        { name: 'verify-uncached', target: `trackgate GET /auth/verify, key cache off, ${DISTINCT.toLocaleString('en-US')} distinct keys`, opts: { url: cold.url, requests: distinct }, gateway: cold, pid: cold.child.pid },
      ]);
      await cold.stop();
      peakRss = Math.max(peakRss, cold.peakRss);
    }

    // Memory with a full key cache: the runs above cache at most 1 000 keys. As many real keys as the
    // cache holds by default, each verified once (the TTL raised so that none expires meanwhile), then
    // proxy, /auth/verify and management load on that gateway.
    let fullCache: { keys: number; peakRss: number } | null = null;
    if (!ONLY || ONLY.has('full-cache')) {
      const bound = configSchema.parse({}).keyCacheMaxEntries;
      log(`seeding ${bound.toLocaleString('en-US')} more real keys for the full-cache run`);
      const cacheKeys = seedKeys(dbFile, orgId, boot.user.id, bound, LARGE, true);
      const full = await startGateway({ ...gwEnv, TRACKGATE_KEY_CACHE_TTL_SECONDS: '600' }, 'full-cache');
      gateways.push(full);
      let next = 0;
      await autocannon({
        url: full.url,
        connections: CONNECTIONS,
        amount: bound,
        requests: [{ method: 'GET', path: '/auth/verify', setupRequest: (req) => ({ ...req, headers: { authorization: basic(cacheKeys[next++ % bound]!) } }) }],
      });
      const afterFill = full.takeWindowPeak();
      const one = { authorization: basic(cacheKeys[0]!) };
      await load({ url: `${full.url}/graphql`, method: 'POST', headers: { ...one, 'content-type': 'application/json' }, body: VIEWER }, DURATION);
      await load({ url: `${full.url}/auth/verify`, headers: one }, DURATION);
      await load({ url: `${full.url}/gateway/v1/me`, headers: one }, DURATION);
      await full.stop();
      fullCache = { keys: bound, peakRss: full.peakRss };
      peakRss = Math.max(peakRss, full.peakRss);
      log(`full key cache (${bound.toLocaleString('en-US')} keys): RSS ${afterFill.toFixed(0)} MB once filled, peak ${full.peakRss.toFixed(0)} MB`);
    }

    const m = machine();
    if (ONLY) {
      log('BENCH_ONLY set: BENCHMARKS.md left as it is');
      return;
    }
    const text = report(rows, m, peakRss, started, seedSeconds, loadBefore, fullCache);
    writeFileSync(join(RESULTS, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ started, machine: m, duration: DURATION, connections: CONNECTIONS, rows, peakRss }, null, 2));
    writeSection('<!-- bench:begin (written by npm run bench) -->', '<!-- bench:end -->', text);
    log(`wrote BENCHMARKS.md\n\n${text}\n`);
  } finally {
    for (const g of gateways) await g.stop().catch(() => {});
    for (const c of children) await stop(c);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** BENCH_ONLY=faults runs the fault scenario alone (bench/faults.ts); without BENCH_ONLY it runs after the others. */
async function main(): Promise<void> {
  buildIfNeeded();
  if (!ONLY || [...ONLY].some((name) => name !== 'faults')) await hotPaths();
  if (!ONLY || ONLY.has('faults')) await runFaults();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
