/**
 * The fault scenario of `npm run bench` (issue 15): two gateway instances (the build, started as `npm start`
 * starts it) on one PostgreSQL and one Redis of the bench's own (test/support/faults), 10 000 keys seeded,
 * BENCH_FAULTS_CLIENTS concurrent clients for BENCH_FAULTS_DURATION seconds: 95 % proxied GETs with a
 * random good key, 5 % management calls (create a key, rotate it with grace 0, revoke its successor) by
 * admin keys; every key revoked is tried again on both instances until the key cache could no longer hold
 * it, and a 200 sent later than REVOCATION_BOUND_MS after the revocation's answer counts against the
 * bound. Redis is killed at 2/7 of the run and started again OUTAGE_MS later; PostgreSQL crashes
 * (`pg_ctl -m immediate`) at 4/7 and starts again OUTAGE_MS later. Writes its figures between the
 * bench-faults markers of BENCHMARKS.md (a run with the default settings only) and everything per second
 * to bench/.results/faults-*.json. Bounded: a watchdog ends the scenario, and everything it started, if
 * it overruns.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { generateKey } from '../src/keys/key-format.ts';
import { canRunPrivatePostgres, PrivatePostgres } from '../test/support/faults/postgres.ts';
import { PrivateRedis } from '../test/support/faults/redis.ts';
import { basic, cpuMs, freePort, Gateway, GATEWAY_FLAGS, log, machine, percentile, RESULTS, ROOT, rssMb, START_ENTRY, stop, writeSection } from './common.ts';

const DEFAULT_DURATION_S = 70;
const DURATION_MS = Number(process.env.BENCH_FAULTS_DURATION ?? DEFAULT_DURATION_S) * 1000;
const CLIENTS = Number(process.env.BENCH_FAULTS_CLIENTS ?? 64);
const KEYS = Number(process.env.BENCH_FAULTS_KEYS ?? 10_000);
const MANAGEMENT_SHARE = 0.05;
/** How long each dependency stays down. */
const OUTAGE_MS = 5_000;
/** The bound (issue 15: ≤ 1 s) past which a revoked key must no longer be accepted by any instance. */
const REVOCATION_BOUND_MS = 1_000;
/** After a revocation, each key is tried on both instances at these times (ms after the revoke's answer): past the bound, then until the default key cache TTL (30 s) has run out. */
const PROBE_AT_MS = [1_050, 2_000, 4_000, 8_000, 16_000, 32_000];
/** Probe pairs in flight at most: their share of the load stays bounded; a late probe is judged by when it was sent. */
const PROBE_CONCURRENCY = 16;
/** The instances recovered within a second of the database's return (issue 15); 503s this long after it still count as the outage's. */
const RECOVERY_GRACE_MS = 2_000;
/** Scenario set-up and shutdown together never take longer than this beyond the load itself. */
const WATCHDOG_EXTRA_MS = 150_000;
const REQUEST_TIMEOUT_MS = 10_000;
const BEGIN = '<!-- bench-faults:begin (written by npm run bench and npm run bench:faults) -->';
const END = '<!-- bench-faults:end -->';
const API = '/gateway/v1';

type Kind = 'verify' | 'create' | 'rotate' | 'revoke' | 'fresh' | 'probe';
/** An HTTP status, or the error code of a request that got no answer. */
type Outcome = number | string;

interface Sample {
  kind: Kind;
  instance: number;
  /** ms since the load began, when sent and when answered. */
  sent: number;
  done: number;
  outcome: Outcome;
}

interface Revoked {
  /** Its place in the order of revocations. */
  id: number;
  secret: string;
  /** When the revocation's answer arrived (ms since the load began). */
  at: number;
  how: 'rotate' | 'revoke';
}

interface Acceptance {
  key: number;
  /** ms after the revocation's answer that the accepted probe was sent. */
  after: number;
  instance: number;
  how: Revoked['how'];
  revokedAt: number;
}

interface Window {
  second: number;
  requests: number;
  outcomes: Record<string, number>;
  verifyP50: number;
  verifyP99: number;
  management: number;
  readyz: string[];
  rssMb: number[];
  events: string[];
}

const now = (t0: number) => performance.now() - t0;
/** The machine's load average (1, 5, 15 min): the machine is shared, and the figures mean little when it is busy. */
const loadAverage = () => (existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'unknown');

/** Runs the fault scenario; throws (after stopping everything it started) when it cannot. */
export async function runFaults(): Promise<void> {
  if (!canRunPrivatePostgres()) throw new Error('the fault scenario needs the PostgreSQL server binaries (initdb, pg_ctl; PG_BIN to point at them) and, as root, a postgres user; .ci/run installs them');
  const started = new Date();
  const dir = mkdtempSync(join(tmpdir(), 'trackgate-bench-faults-'));
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  mkdirSync(RESULTS, { recursive: true });
  let pgServer: PrivatePostgres | null = null;
  let redis: PrivateRedis | null = null;
  let upstream: ChildProcess | null = null;
  const gateways: Gateway[] = [];
  const pools: Pool[] = [];
  let cleaned: Promise<void> | null = null;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
      await Promise.all(gateways.map((g) => g.stop().catch(() => {})));
      await redis?.kill().catch(() => {});
      pgServer?.destroy();
      if (upstream) await stop(upstream);
      rmSync(dir, { recursive: true, force: true });
    })());
  // Interrupted or overrunning, the scenario still stops its PostgreSQL (a daemon of its own), Redis and gateways.
  const onSignal = (signal: NodeJS.Signals) => {
    log(`faults: ${signal}, stopping what the scenario started`);
    void cleanup().finally(() => process.exit(1));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(() => {
    log(`faults: still running ${(DURATION_MS + WATCHDOG_EXTRA_MS) / 1000} s after it began; stopping everything it started`);
    void cleanup().finally(() => process.exit(1));
  }, DURATION_MS + WATCHDOG_EXTRA_MS);
  watchdog.unref();
  try {
    log('faults: starting a PostgreSQL and a Redis of the scenario\'s own, and the upstream');
    [pgServer, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
    const up = spawn(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs'), String(await freePort())], { stdio: ['ignore', 'pipe', 'inherit'] });
    upstream = up;
    const upstreamUrl = `http://127.0.0.1:${await new Promise<number>((resolve) => up.stdout!.once('data', (d: Buffer) => resolve(Number(/listening (\d+)/.exec(d.toString())![1]))))}`;

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      TRACKGATE_DATABASE_URL: pgServer.url,
      TRACKGATE_REDIS_URL: redis.url,
      // One deployment: the instances share the secret key.
      TRACKGATE_SECRET_KEY: randomBytes(32).toString('hex'),
      TRACKGATE_HOST: '127.0.0.1',
      TRACKGATE_UPSTREAM_URL: upstreamUrl,
      TRACKGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      // Probes of revoked keys are failures from one address; the failure limit would answer them 429.
      TRACKGATE_AUTH_FAILURE_LIMIT: '1000000',
      TRACKGATE_CONFIG_DIR: join(dir, 'no-config'),
      TRACKGATE_DATA_DIR: join(dir, 'cli'),
    };
    const admins = await provision(env);
    log(`faults: seeding ${KEYS.toLocaleString('en-US')} keys`);
    const seedStart = performance.now();
    const goodKeys = await seedKeys(pgServer.url, admins.orgId, admins.loadUserId, KEYS);
    const seedSeconds = (performance.now() - seedStart) / 1000;

    for (const label of ['a', 'b']) {
      gateways.push(await Gateway.start({ ...env, TRACKGATE_DATA_DIR: join(dir, label), TRACKGATE_LOG_FILE: join(RESULTS, `faults-${stamp}-${label}.log`) }));
    }
    for (const g of gateways) pools.push(new Pool(g.url, { connections: CLIENTS + 2 * PROBE_CONCURRENCY + 8, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS }));
    const rssNow = () => gateways.map((g) => rssMb(g.child.pid) ?? NaN);
    const rssIdle = rssNow();
    let rssStart: number[] = [];


    const load = new Load(pools, goodKeys, admins.keys);
    log(`faults: set up in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; ${CLIENTS} clients for ${DURATION_MS / 1000} s`);
    const loadBefore = loadAverage();
    const cpuBefore = gateways.map((g) => cpuMs(g.child.pid) ?? NaN);
    const t0 = performance.now();
    load.begin(t0);
    const events: { at: number; what: string }[] = [];
    const mark = (what: string) => {
      events.push({ at: now(t0), what });
      log(`faults: ${(now(t0) / 1000).toFixed(1)} s ${what}`);
    };
    const sampler = startSampler(t0, gateways);
    const redisAt = (DURATION_MS * 2) / 7;
    const pgAt = (DURATION_MS * 4) / 7;
    const faults = (async () => {
      const pgs = pgServer!;
      const rds = redis!;
      await sleepUntil(t0, redisAt);
      // "Start" memory: the key caches have filled for a third of the run and no fault has happened yet.
      rssStart = rssNow();
      mark('Redis killed (SIGKILL)');
      await rds.kill();
      await sleepUntil(t0, redisAt + OUTAGE_MS);
      mark('Redis starting');
      await rds.startServer();
      mark('Redis accepting connections');
      await sleepUntil(t0, pgAt);
      mark('PostgreSQL crash (pg_ctl -m immediate)');
      await pgs.crashInBackground();
      mark('PostgreSQL down');
      await sleepUntil(t0, pgAt + OUTAGE_MS);
      mark('PostgreSQL starting');
      await pgs.startServer();
      mark('PostgreSQL accepting connections');
    })();
    await Promise.all([load.run(DURATION_MS), faults]);
    await load.finishProbes();
    const elapsed = now(t0);
    sampler.stop();
    const rssEnd = rssNow();
    const cpuUsed = gateways.map((g, i) => (cpuMs(g.child.pid) ?? NaN) - cpuBefore[i]!);
    const rssPeak = gateways.map((g) => g.peakRss);
    const readyAfter = await Promise.all(pools.map((p) => readyz(p)));

    const summary = summarize({ load, events, readings: sampler.readings, elapsed, cpuUsed, rssIdle, rssStart, rssEnd, rssPeak, readyAfter });
    const recorded = DURATION_MS === DEFAULT_DURATION_S * 1000 && CLIENTS === 64 && KEYS === 10_000;
    const text = report(summary, { started, seedSeconds, machine: machine(), loadBefore, loadAfter: loadAverage() });
    writeFileSync(join(RESULTS, `faults-${stamp}.json`), JSON.stringify({ started, summary, acceptances: load.acceptances }, null, 2));
    if (recorded) {
      writeSection(BEGIN, END, text);
      log(`faults: wrote BENCHMARKS.md\n\n${text}\n`);
    } else {
      log(`faults: settings other than the defaults, BENCHMARKS.md left as it is\n\n${text}\n`);
    }
  } finally {
    clearTimeout(watchdog);
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntil = (t0: number, at: number) => sleep(at - now(t0));

/** The organization, its admins (the management clients' keys, one admin per 16 clients: each holds at most two live keys per client, under the per-owner cap) and the owner of the seeded keys, through the CLI. */
async function provision(env: NodeJS.ProcessEnv): Promise<{ orgId: string; loadUserId: string; keys: string[] }> {
  const cli = async (args: string[]) => JSON.parse((await promisify(execFile)(process.execPath, [START_ENTRY, ...args, '--json'], { env })).stdout) as Record<string, any>;
  const boot = await cli(['bootstrap', '--email', 'bench@bench.example', '--org', 'bench', '--plan', 'enterprise']);
  const more = await Promise.all([
    ...Array.from({ length: Math.max(0, Math.ceil(CLIENTS / 16) - 1) }, (_, i) => cli(['users', 'create', '--org', 'bench', '--email', `admin${i + 1}@bench.example`, '--username', `admin${i + 1}`, '--role', 'admin', '--with-key'])),
    cli(['users', 'create', '--org', 'bench', '--email', 'load@bench.example', '--username', 'load', '--role', 'member']),
  ]);
  const load = more.pop()!;
  return { orgId: boot.org.id, loadUserId: load.user.id, keys: [boot.api_key, ...more.map((r) => r.api_key as string)] };
}

/** Inserts real keys straight into PostgreSQL, 1 000 rows a statement, and returns their secrets. */
async function seedKeys(url: string, orgId: string, userId: string, count: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const secrets: string[] = [];
  try {
    const created = new Date().toISOString();
    for (let start = 0; start < count; start += 1000) {
      const values: unknown[] = [];
      const rows: string[] = [];
      for (let i = start; i < Math.min(count, start + 1000); i++) {
        const g = generateKey('user');
        secrets.push(g.key);
        const n = values.length;
        rows.push(`($${n + 1}, $${n + 2}, 'user', $${n + 3}, NULL, $${n + 4}, $${n + 5}, $${n + 6}, $${n + 7}, $${n + 3}, NULL, NULL, NULL, NULL)`);
        values.push(randomUUID(), orgId, userId, `bench-${i}`, g.keyId, g.hash, created);
      }
      await client.query(
        `INSERT INTO api_keys (id, org_id, owner_type, user_id, service_account_id, name, key_id, key_hash, created_at, created_by, last_used_at, expires_at, revoked_at, rotated_from_id) VALUES ${rows.join(', ')}`,
        values,
      );
    }
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM api_keys WHERE user_id = $1', [userId]);
    if (Number(rows[0]!.n) !== count) throw new Error(`expected ${count} seeded keys, found ${rows[0]!.n}`);
  } finally {
    await client.end();
  }
  return secrets;
}

/** One request; its status, or the error code when no answer came. */
async function send(pool: Pool, method: 'GET' | 'POST' | 'DELETE', path: string, key: string, body: unknown): Promise<{ outcome: Outcome; json: any }> {
  try {
    const r = await pool.request({
      method,
      path,
      headers: { authorization: basic(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.body.text();
    let json: any = null;
    if (text && (r.headers['content-type'] ?? '').toString().includes('json')) {
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON after all */
      }
    }
    return { outcome: r.statusCode, json };
  } catch (err) {
    return { outcome: `error:${(err as { code?: string }).code ?? (err as Error).name}`, json: null };
  }
}

async function readyz(pool: Pool): Promise<string> {
  try {
    const r = await pool.request({ method: 'GET', path: '/readyz', headersTimeout: 2_000, bodyTimeout: 2_000 });
    const body = (await r.body.json().catch(() => null)) as { status?: string } | null;
    return `${r.statusCode}${body?.status && body.status !== 'ok' ? ` ${body.status}` : ''}`;
  } catch (err) {
    return `error:${(err as { code?: string }).code ?? 'unknown'}`;
  }
}

/** The clients, their management cycles and the probes of revoked keys; every answer is a Sample. */
class Load {
  readonly samples: Sample[] = [];
  readonly revoked: Revoked[] = [];
  readonly acceptances: Acceptance[] = [];
  probesSent = 0;
  probesLateMs: number[] = [];
  private t0 = 0;
  private ending = false;
  /** One FIFO of revoked keys per probe time: keys enter in the order they were revoked, so each queue's head is its earliest due. */
  private readonly probeQueues: Revoked[][] = PROBE_AT_MS.map(() => []);
  private probeWorkers: Promise<void>[] = [];
  private freshSeq = 0;

  constructor(
    private readonly pools: Pool[],
    private readonly goodKeys: string[],
    private readonly adminKeys: string[],
  ) {}

  begin(t0: number): void {
    this.t0 = t0;
    this.probeWorkers = Array.from({ length: PROBE_CONCURRENCY }, () => this.probeWorker());
  }

  private async timed(kind: Kind, instance: number, method: 'GET' | 'POST' | 'DELETE', path: string, key: string, body?: unknown) {
    const sent = now(this.t0);
    const r = await send(this.pools[instance]!, method, path, key, body);
    const done = now(this.t0);
    this.samples.push({ kind, instance, sent, done, outcome: r.outcome });
    return { ...r, sent, done };
  }

  async run(durationMs: number): Promise<void> {
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => this.client(i, durationMs)));
  }

  private async client(index: number, durationMs: number): Promise<void> {
    const admin = this.adminKeys[index % this.adminKeys.length]!;
    let cycle: { stage: 'create' } | { stage: 'rotate' | 'revoke'; id: string; secret: string } = { stage: 'create' };
    let n = 0;
    while (now(this.t0) < durationMs) {
      const instance = (index + n++) % this.pools.length;
      if (Math.random() >= MANAGEMENT_SHARE) {
        await this.timed('verify', instance, 'GET', `/bench/run/${n}`, this.goodKeys[Math.floor(Math.random() * this.goodKeys.length)]!);
        continue;
      }
      if (cycle.stage === 'create') {
        const r = await this.timed('create', instance, 'POST', `${API}/me/keys`, admin, { name: `faults-${index}-${this.freshSeq++}` });
        if (r.outcome === 201) {
          cycle = { stage: 'rotate', id: r.json.id, secret: r.json.key };
          await this.warm(cycle.secret);
        }
      } else if (cycle.stage === 'rotate') {
        const r = await this.timed('rotate', instance, 'POST', `${API}/keys/${cycle.id}/rotate`, admin, { grace_seconds: 0 });
        if (r.outcome === 201) {
          this.track({ secret: cycle.secret, at: r.done, how: 'rotate' });
          cycle = { stage: 'revoke', id: r.json.id, secret: r.json.key };
          await this.warm(cycle.secret);
        } else if (r.outcome === 404 || r.outcome === 409) {
          // Rotated (and so revoked) by an earlier attempt whose answer was lost: revoked by now at the latest. Its successor is not known; it stays live.
          this.track({ secret: cycle.secret, at: r.done, how: 'rotate' });
          cycle = { stage: 'create' };
        }
      } else {
        const r = await this.timed('revoke', instance, 'DELETE', `${API}/keys/${cycle.id}`, admin);
        if (r.outcome === 204 || r.outcome === 404) {
          this.track({ secret: cycle.secret, at: r.done, how: 'revoke' });
          cycle = { stage: 'create' };
        }
      }
    }
  }

  /** A new key used once on each instance, so that both cache it and its revocation has to reach both. */
  private async warm(secret: string): Promise<void> {
    await Promise.all(this.pools.map((_, i) => this.timed('fresh', i, 'GET', '/bench/fresh', secret)));
  }

  private track(revocation: Omit<Revoked, 'id'>): void {
    const r = { ...revocation, id: this.revoked.length };
    this.revoked.push(r);
    this.probeQueues[0]!.push(r);
  }

  /**
   * The probe to send next: the first one just past the bound comes before any later one that is due, since it is
   * the one that tests the bound; among the later ones, the longest overdue. Null when none is queued.
   */
  private nextDue(): { queue: number; due: number } | null {
    const t = now(this.t0);
    const heads = this.probeQueues.flatMap((q, i) => (q[0] ? [{ queue: i, due: q[0].at + PROBE_AT_MS[i]! }] : []));
    const earliest = (hs: typeof heads) => hs.reduce((a, b) => (b.due < a.due ? b : a));
    const dueNow = heads.filter((h) => h.due <= t);
    if (dueNow.length) return dueNow.find((h) => h.queue === 0) ?? earliest(dueNow);
    return heads.length ? earliest(heads) : null;
  }

  private async probeWorker(): Promise<void> {
    for (;;) {
      const due = this.nextDue();
      if (!due) {
        if (this.ending) return;
        await sleep(20);
        continue;
      }
      const wait = due.due - now(this.t0);
      if (wait > 0) {
        // After the load, probes that are not yet due are left: the summary says how many were sent.
        if (this.ending) return;
        await sleep(Math.min(wait, 20));
        continue;
      }
      const r = this.probeQueues[due.queue]!.shift()!;
      if (due.queue + 1 < PROBE_AT_MS.length) this.probeQueues[due.queue + 1]!.push(r);
      this.probesSent++;
      this.probesLateMs.push(-wait);
      await Promise.all(
        this.pools.map(async (_, instance) => {
          const s = await this.timed('probe', instance, 'GET', '/bench/revoked', r.secret);
          if (s.outcome === 200 && s.sent - r.at > REVOCATION_BOUND_MS) this.acceptances.push({ key: r.id, after: s.sent - r.at, instance, how: r.how, revokedAt: r.at });
        }),
      );
    }
  }

  /** Stops the probes once those already due have been sent. */
  async finishProbes(): Promise<void> {
    this.ending = true;
    await Promise.all(this.probeWorkers);
  }

  probesNotSent(): number {
    return this.probeQueues.reduce((n, q) => n + q.length, 0);
  }
}

interface Reading {
  /** ms since the load began: when the memory was read and the /readyz requests sent. */
  at: number;
  /** Peak resident memory of each instance since the last reading. */
  rssMb: number[];
  /** Each instance's /readyz answer, and when it arrived (the instance ran its checks in between). */
  readyz: { answer: string; at: number }[];
}

/** About once a second: each instance's /readyz and resident memory. */
function startSampler(t0: number, gateways: Gateway[]): { readings: Reading[]; stop: () => void } {
  // A few connections each, so that a slow answer does not hold the next request back.
  const pools = gateways.map((g) => new Pool(g.url, { connections: 4 }));
  const readings: Reading[] = [];
  const timer = setInterval(() => {
    const reading: Reading = { at: now(t0), rssMb: gateways.map((g) => g.takeWindowPeak()), readyz: [] };
    readings.push(reading);
    pools.forEach((p, i) => void readyz(p).then((answer) => (reading.readyz[i] = { answer, at: now(t0) })));
  }, 1000);
  return {
    readings,
    stop: () => {
      clearInterval(timer);
      for (const p of pools) void p.destroy().catch(() => {});
    },
  };
}

interface Summary {
  elapsedS: number;
  requests: number;
  throughput: number;
  /** CPU time (all threads) each instance spent during the load, as a share of one core and per request it answered, in µs. */
  gatewayCpu: { coreShare: number; usPerRequest: number }[];
  byKind: Record<string, { n: number; p50: number; p99: number; outcomes: Record<string, number> }>;
  outcomes: Record<string, number>;
  status500: number;
  status503: number;
  status503Outside: { at: number; kind: Kind }[];
  goodKey401: number;
  outageWindow: [number, number] | null;
  revoked: number;
  probesSent: number;
  probesNotSent: number;
  probeLateP50: number;
  probeLateP99: number;
  acceptedPastBound: number;
  keysAcceptedPastBound: number;
  /** When the keys accepted past the bound had been revoked (ms since the load began): the first and the last. */
  acceptedRevokedBetween: [number, number] | null;
  longestAcceptanceMs: number | null;
  rss: { idle: number[]; start: number[]; end: number[]; peak: number[] };
  readyAfter: string[];
  events: { at: number; what: string }[];
  windows: Window[];
}

function statsOf(samples: Sample[]) {
  const lat = Float64Array.from(samples.map((s) => s.done - s.sent)).sort();
  const outcomes: Record<string, number> = {};
  for (const s of samples) outcomes[String(s.outcome)] = (outcomes[String(s.outcome)] ?? 0) + 1;
  return { n: samples.length, p50: percentile(lat, 50), p99: percentile(lat, 99), outcomes };
}

function summarize(input: { load: Load; events: { at: number; what: string }[]; readings: Reading[]; elapsed: number; cpuUsed: number[]; rssIdle: number[]; rssStart: number[]; rssEnd: number[]; rssPeak: number[]; readyAfter: string[] }): Summary {
  const { load, events } = input;
  const samples = load.samples;
  const crash = events.find((e) => e.what.startsWith('PostgreSQL crash'))?.at;
  const back = events.find((e) => e.what === 'PostgreSQL accepting connections')?.at;
  const outageWindow: [number, number] | null = crash !== undefined && back !== undefined ? [crash, back + RECOVERY_GRACE_MS] : null;
  const byKind: Summary['byKind'] = {};
  for (const kind of ['verify', 'create', 'rotate', 'revoke', 'fresh', 'probe'] as const) byKind[kind] = statsOf(samples.filter((s) => s.kind === kind));
  const all = statsOf(samples);
  const windows: Window[] = [];
  const bins: Sample[][] = Array.from({ length: Math.ceil(input.elapsed / 1000) }, () => []);
  for (const x of samples) bins[Math.min(bins.length - 1, Math.floor(x.done / 1000))]!.push(x);
  bins.forEach((inWindow, second) => {
    const v = Float64Array.from(inWindow.filter((x) => x.kind === 'verify').map((x) => x.done - x.sent)).sort();
    // Memory: the reading taken at the end of this second; /readyz: the last answer that arrived during it.
    const reading = input.readings.find((r) => r.at >= (second + 1) * 1000 - 100);
    const ready = [0, 1].map((i) => input.readings.map((r) => r.readyz[i]).filter((a) => a !== undefined && Math.floor(a.at / 1000) === second).pop()?.answer ?? '–');
    windows.push({
      second,
      requests: inWindow.length,
      outcomes: statsOf(inWindow).outcomes,
      verifyP50: percentile(v, 50),
      verifyP99: percentile(v, 99),
      management: inWindow.filter((x) => x.kind === 'create' || x.kind === 'rotate' || x.kind === 'revoke').length,
      readyz: ready,
      rssMb: reading?.rssMb ?? [NaN, NaN],
      events: events.filter((e) => Math.floor(e.at / 1000) === second).map((e) => e.what),
    });
  });
  const s503 = samples.filter((s) => s.outcome === 503);
  const lateSorted = Float64Array.from(load.probesLateMs).sort();
  return {
    elapsedS: input.elapsed / 1000,
    requests: samples.length,
    throughput: samples.length / (input.elapsed / 1000),
    gatewayCpu: input.cpuUsed.map((cpu, i) => ({ coreShare: cpu / input.elapsed, usPerRequest: (cpu * 1000) / samples.filter((x) => x.instance === i).length })),
    byKind,
    outcomes: all.outcomes,
    status500: samples.filter((s) => s.outcome === 500).length,
    status503: s503.length,
    status503Outside: s503.filter((s) => !outageWindow || s.done < outageWindow[0] || s.done > outageWindow[1]).map((s) => ({ at: s.done, kind: s.kind })),
    goodKey401: samples.filter((s) => s.kind === 'verify' && s.outcome === 401).length,
    outageWindow,
    revoked: load.revoked.length,
    probesSent: load.probesSent,
    probesNotSent: load.probesNotSent(),
    probeLateP50: percentile(lateSorted, 50),
    probeLateP99: percentile(lateSorted, 99),
    acceptedPastBound: load.acceptances.length,
    keysAcceptedPastBound: new Set(load.acceptances.map((a) => a.key)).size,
    acceptedRevokedBetween: load.acceptances.length ? [Math.min(...load.acceptances.map((a) => a.revokedAt)), Math.max(...load.acceptances.map((a) => a.revokedAt))] : null,
    longestAcceptanceMs: load.acceptances.length ? Math.max(...load.acceptances.map((a) => a.after)) : null,
    rss: { idle: input.rssIdle, start: input.rssStart, end: input.rssEnd, peak: input.rssPeak },
    readyAfter: input.readyAfter,
    events,
    windows,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isNaN(n) ? '–' : n < 10 ? n.toFixed(1) : n.toFixed(0));
const sec = (t: number) => (t / 1000).toFixed(1);
const outcomeList = (o: Record<string, number>) =>
  Object.entries(o)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}: ${fmt(v)}`)
    .join(', ');

function report(s: Summary, meta: { started: Date; seedSeconds: number; machine: Record<string, string>; loadBefore: string; loadAfter: string }): string {
  const m = meta.machine;
  const L: string[] = [];
  L.push(
    `Measured ${meta.started.toISOString()} with \`npm run bench:faults\` (\`BENCH_ONLY=faults node --import tsx bench/run.ts\`; \`npm run bench\` runs it after the others): two gateways started as \`node ${GATEWAY_FLAGS.join(' ')} ${relative(ROOT, START_ENTRY)} serve\` on one PostgreSQL and one Redis of the bench's own, ${KEYS.toLocaleString('en-US')} keys seeded in ${meta.seedSeconds.toFixed(1)} s (the key caches start empty); ${CLIENTS} concurrent clients (undici) for ${sec(DURATION_MS)} s, each request to the two instances in turn: ${Math.round((1 - MANAGEMENT_SHARE) * 100)} % proxied GETs with a random seeded key, ${Math.round(MANAGEMENT_SHARE * 100)} % management calls by ${Math.ceil(CLIENTS / 16)} admin keys (create a key, use it once on each instance, rotate it with grace 0, use the successor once on each, revoke the successor). Every revoked key is tried again on both instances ${(PROBE_AT_MS[0]! / 1000).toFixed(2)}, ${PROBE_AT_MS.slice(1).map((t) => t / 1000).join(', ')} s after the revocation's answer (at most ${PROBE_CONCURRENCY} pairs in flight); a 200 to a probe sent more than ${REVOCATION_BOUND_MS / 1000} s after that answer counts as accepted past the bound. Machine: ${m.cpu}, \`nproc\` = ${m.nproc}, ${m.memory}, ${m.os}, Node.js ${m.node}; everything on this one machine, whose load average was ${meta.loadBefore} before the load and ${meta.loadAfter} after it.`,
  );
  L.push('');
  L.push(`Faults: ${s.events.map((e) => `${sec(e.at)} s ${e.what}`).join('; ')}. The database outage window, for the 503s: from the crash to ${RECOVERY_GRACE_MS / 1000} s after PostgreSQL accepted connections again${s.outageWindow ? ` (${sec(s.outageWindow[0])}–${sec(s.outageWindow[1])} s)` : ''}.`);
  L.push('');
  L.push('| figure | target | result |');
  L.push('| --- | --- | ---: |');
  L.push(`| requests answered (all kinds) in ${s.elapsedS.toFixed(1)} s | – | ${fmt(s.requests)} (${fmt(s.throughput)} req/s) |`);
  L.push(`| gateway CPU time (all threads) during the load, a / b: share of one core; per request answered | – | ${s.gatewayCpu.map((c) => `${Math.round(c.coreShare * 100)} %`).join(' / ')}; ${s.gatewayCpu.map((c) => `${fmt(c.usPerRequest)} µs`).join(' / ')} |`);
  L.push(`| proxied GETs with a good key: p50 / p99 | – | ${ms(s.byKind.verify!.p50)} / ${ms(s.byKind.verify!.p99)} ms |`);
  L.push(`| 500 answers | none | **${fmt(s.status500)}** |`);
  L.push(`| 503 answers outside the database outage window | none | **${fmt(s.status503Outside.length)}** (of ${fmt(s.status503)} 503s)${s.status503Outside.length ? `: at ${[...new Set(s.status503Outside.map((x) => sec(x.at)))].slice(0, 8).join(', ')} s` : ''} |`);
  L.push(`| 401 for a good (seeded, never revoked) key | none | **${fmt(s.goodKey401)}** |`);
  L.push(`| revoked keys accepted past the bound (${REVOCATION_BOUND_MS / 1000} s) | none | **${fmt(s.keysAcceptedPastBound)}** of ${fmt(s.revoked)} revoked (${fmt(s.acceptedPastBound)} probe answers 200${s.longestAcceptanceMs !== null ? `; the latest ${sec(s.longestAcceptanceMs)} s after its revocation` : ''}${s.acceptedRevokedBetween ? `; those keys were revoked between ${sec(s.acceptedRevokedBetween[0])} and ${sec(s.acceptedRevokedBetween[1])} s` : ''}) |`);
  L.push(`| probes of revoked keys: pairs sent / left unsent at the end; lateness p50 / p99 | – | ${fmt(s.probesSent)} / ${fmt(s.probesNotSent)}; ${ms(s.probeLateP50)} / ${ms(s.probeLateP99)} ms |`);
  s.rss.start.forEach((_, i) => L.push(`| instance ${'ab'[i]} RSS: idle → before the first fault (start) → end; peak | flat | ${s.rss.idle[i]!.toFixed(0)} → **${s.rss.start[i]!.toFixed(0)} → ${s.rss.end[i]!.toFixed(0)} MB**; ${s.rss.peak[i]!.toFixed(0)} MB |`));
  L.push(`| /readyz of each instance after the run | 200 | ${s.readyAfter.join(' / ')} |`);
  L.push('');
  L.push('| kind | requests | p50 ms | p99 ms | answers by status (or error) |');
  L.push('| --- | ---: | ---: | ---: | --- |');
  const what: Record<string, string> = {
    verify: 'proxied GET, good key',
    create: 'POST /gateway/v1/me/keys',
    rotate: 'POST /gateway/v1/keys/:id/rotate (grace 0)',
    revoke: 'DELETE /gateway/v1/keys/:id',
    fresh: 'proxied GET, a key just created or rotated in (expected 200)',
    probe: 'proxied GET, a revoked key (expected 401)',
  };
  for (const [kind, k] of Object.entries(s.byKind)) L.push(`| ${what[kind]} | ${fmt(k.n)} | ${ms(k.p50)} | ${ms(k.p99)} | ${outcomeList(k.outcomes)} |`);
  L.push(`| all | ${fmt(s.requests)} | – | – | ${outcomeList(s.outcomes)} |`);
  L.push('');
  L.push('<details><summary>Each second of the load (answers binned by when they arrived)</summary>');
  L.push('');
  L.push('| s | events | answers | management | good-key p50 / p99 ms | by status | /readyz a / b (the last answer that second) | RSS a / b MB |');
  L.push('| ---: | --- | ---: | ---: | ---: | --- | --- | ---: |');
  for (const w of s.windows) L.push(`| ${w.second} | ${w.events.join('; ')} | ${fmt(w.requests)} | ${w.management} | ${ms(w.verifyP50)} / ${ms(w.verifyP99)} | ${outcomeList(w.outcomes)} | ${w.readyz.join(' / ')} | ${w.rssMb.map((x) => (Number.isNaN(x) ? '–' : x.toFixed(0))).join(' / ')} |`);
  L.push('');
  L.push('</details>');
  return L.join('\n');
}
