/**
 * Crash safety with real processes (issue 15): instance A is killed with `kill -9` at random moments while
 * it rotates and revokes keys, changes a team, creates service-account keys and completes SSO logins;
 * instance B, on the same database and Redis, answers verifications the whole time. After each kill the
 * database holds no half-done change (each change and its audit event commit together, see
 * support/faults/change-audit-invariants.ts) and B's answers agree with it. Also: last_used_at loses at
 * most the last flush interval, and instances starting at once on an empty database migrate it once.
 * PostgreSQL is a private cluster (PrivatePostgres); SQLite is one file shared by the two processes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { migrateToLatest, openDatabase } from '../src/db/database.ts';
import { dialectCaps } from '../src/db/dialect.ts';
import { migrations } from '../src/db/migrations/index.ts';
import { baseline, changeAuditViolations } from './support/faults/change-audit-invariants.ts';
import type { Baseline, Query } from './support/faults/change-audit-invariants.ts';
import { GatewayProcess } from './support/faults/gateway-process.ts';
import { freePort } from './support/faults/ports.ts';
import { PrivatePostgres, canRunPrivatePostgres } from './support/faults/postgres.ts';
import { PrivateRedis, canRunPrivateRedis } from './support/faults/redis.ts';
import { Browser } from './support/idp/browser.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { basic, sleep } from './support/app.ts';

const ROOT = join(import.meta.dirname, '..');
/** TRACKGATE_LAST_USED_FLUSH_MS of the instances. */
const FLUSH_MS = 500;
/** How long after A's death B may still accept a key A revoked (B drops it on the invalidation A published). */
const REVOCATION_BOUND_MS = 3000;
/** Timer lag and the flush's own transaction on a loaded machine. */
const FLUSH_MARGIN_MS = 1500;
const ROUNDS = Number(process.env.TRACKGATE_TEST_CRASH_ROUNDS ?? 3);

const skip = !canRunPrivatePostgres() ? 'SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl) on this machine' : !canRunPrivateRedis() ? 'SKIPPED: no redis-server on this machine' : false;

const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

type Answer = { status: number; text: string; body: any } | { error: string };

/** One HTTP call; a connection that dies (the instance was killed) is an answer too: `{ error }`. */
async function call(base: string, method: string, path: string, key: string | null, body?: unknown): Promise<Answer> {
  try {
    const headers: Record<string, string> = {};
    if (key) headers.authorization = basic(key);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, text, body: parsed };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { error: e.cause?.code ?? e.message };
  }
}

function ok(a: Answer, status: number, what: string): any {
  assert.ok(!('error' in a), `${what}: ${'error' in a ? a.error : ''}`);
  assert.equal(a.status, status, `${what}: ${a.text}`);
  return a.body;
}

const started: GatewayProcess[] = [];
async function startGateway(env: Record<string, string>, port?: number): Promise<GatewayProcess> {
  const g = await GatewayProcess.start(env, port ? { port } : {});
  started.push(g);
  return g;
}

let pgServer: PrivatePostgres;
let redis: PrivateRedis;
let idp: JoseIdp;
const dirs: string[] = [];
const pools: pg.Pool[] = [];

async function createDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: pgServer.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `postgres://postgres@127.0.0.1:${pgServer.port}/${name}`;
}

function pgQuery(url: string): Query {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  pools.push(pool);
  return async (text) => (await pool.query(text)).rows as Record<string, unknown>[];
}

function sqliteQuery(file: string): { query: Query; close: () => void } {
  const db = new Database(file, { readonly: true });
  db.pragma('busy_timeout = 5000');
  return { query: (text) => Promise.resolve(db.prepare(text).all() as Record<string, unknown>[]), close: () => db.close() };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tg-crash-'));
  dirs.push(d);
  return d;
}

describe('crash safety and start-up with real processes', { skip, timeout: 600_000 }, () => {
  before(async () => {
    [pgServer, redis, idp] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start(), startJoseIdp({ clientId: 'crash-spa' })]);
  });
  after(async () => {
    await Promise.all(started.map((g) => g.kill()));
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await redis?.kill();
    pgServer?.destroy();
    await idp?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const dialect of ['postgres', 'sqlite'] as const) {
    describe(`kill -9 of instance A in the middle of changes, B serving (${dialect})`, () => {
      let a: GatewayProcess;
      let b: GatewayProcess;
      let query: Query;
      let closeQuery: () => void = () => {};
      let adminKey = '';
      let base: Baseline;
      /** Every key secret handed out, by key id. */
      const secrets = new Map<string, string>();
      /** Keys the stream may rotate or revoke (live, as far as the test knows). */
      const pool: Array<{ id: string; secret: string }> = [];
      /** Keys never changed: B must accept them on every verification. */
      const controls: string[] = [];
      /** Revocations A acknowledged, with the time of its answer. */
      const acked: Array<{ secret: string; at: number }> = [];
      const saIds: string[] = [];
      const problems: string[] = [];
      let verifications = 0;
      let stopVerifier = false;
      let verifier: Promise<void> = Promise.resolve();
      const counts: Record<string, number> = {};
      const count = (what: string) => (counts[what] = (counts[what] ?? 0) + 1);

      const remember = (g: GatewayProcess, id: string, secret: string) => {
        secrets.set(id, secret);
        g.recordKeys([secret]);
        b?.recordKeys([secret]);
      };

      before(async () => {
        const dir = tempDir();
        const dbFile = join(dir, 'trackgate.db');
        const databaseUrl = dialect === 'postgres' ? await createDatabase(`crash_${randomBytes(4).toString('hex')}`) : `sqlite:${dbFile}`;
        const [portA, portB] = [await freePort(), await freePort()];
        const env = {
          TRACKGATE_DATABASE_URL: databaseUrl,
          TRACKGATE_REDIS_URL: redis.url,
          TRACKGATE_REDIS_KEY_PREFIX: `crash-${dialect}:`,
          TRACKGATE_SECRET_KEY: randomBytes(32).toString('hex'),
          TRACKGATE_DATA_DIR: join(dir, 'data'),
          TRACKGATE_LAST_USED_FLUSH_MS: String(FLUSH_MS),
          TRACKGATE_MAX_KEYS_PER_PRINCIPAL: '100000',
          TRACKGATE_AUTH_FAILURE_LIMIT: '1000000',
          TRACKGATE_LOGIN_START_LIMIT: '1000000',
          TRACKGATE_ALLOW_HTTP_ISSUERS: 'true',
          TRACKGATE_SSO_JWKS_COOLDOWN_SECONDS: '0',
        };
        // The organization comes from the CLI, as an operator makes it.
        const boot = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'bootstrap', '--email', 'root@crash.test', '--org', 'crash', '--plan', 'enterprise', '--json'], {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', TRACKGATE_LOG_LEVEL: 'warn', TRACKGATE_LOG_FILE: join(dir, 'cli.log'), ...env },
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(boot.status, 0, boot.stderr);
        adminKey = (JSON.parse(boot.stdout) as { api_key: string }).api_key;
        [a, b] = await Promise.all([
          startGateway({ ...env, TRACKGATE_PUBLIC_URL: `http://127.0.0.1:${portA}` }, portA),
          startGateway({ ...env, TRACKGATE_PUBLIC_URL: `http://127.0.0.1:${portB}` }, portB),
        ]);
        a.recordKeys([adminKey]);
        b.recordKeys([adminKey]);
        if (dialect === 'postgres') query = pgQuery(databaseUrl);
        else ({ query, close: closeQuery } = sqliteQuery(dbFile));

        const api = (method: string, path: string, body?: unknown) => call(a.url, method, '/gateway/v1' + path, adminKey, body);
        for (let i = 1; i <= 4; i++) ok(await api('POST', '/orgs/crash/users', { email: `u${i}@members.test`, username: `u${i}`, role: 'member' }), 201, 'user');
        for (const name of ['crew', 'sso-crew']) ok(await api('POST', '/orgs/crash/teams', { name }), 201, 'team');
        for (const name of ['sa one', 'sa two']) {
          const sa = ok(await api('POST', '/teams/crew/service-accounts', { name }), 201, 'service account');
          saIds.push(sa.id);
          remember(a, sa.key.id, sa.key.key);
          if (controls.length === 0) controls.push(sa.key.key);
          else pool.push({ id: sa.key.id, secret: sa.key.key });
        }
        for (let i = 0; i < 4; i++) {
          const k = ok(await api('POST', '/me/keys', { name: `k${i}` }), 201, 'personal key');
          remember(a, k.id, k.key);
          if (i === 0) controls.push(k.key);
          else pool.push({ id: k.id, secret: k.key });
        }
        ok(await api('POST', '/orgs/crash/sso', { issuer: idp.issuer, client_id: idp.clientId, domains: ['sso.crash.test'], jit: true, group_roles: [{ group: 'eng', team: 'sso-crew', role: 'member' }, { group: 'leads', team: 'sso-crew', role: 'admin' }] }), 201, 'SSO connection');
        base = await baseline(query);

        // B answers verifications from now to the end: every answer is a 200 or a 401, and the right one.
        const verify = async () => {
          while (!stopVerifier) {
            const r = Math.random();
            const old = acked.filter((x) => x.at < Date.now() - REVOCATION_BOUND_MS);
            const [key, want] = r < 0.4 ? [pick(controls)!, 200] : r < 0.7 && old.length ? [pick(old)!.secret, 401] : [pick(pool)?.secret ?? controls[0]!, 0];
            const ans = await call(b.url, 'GET', '/auth/verify', key);
            verifications++;
            if ('error' in ans) problems.push(`B: verification failed: ${ans.error}`);
            else if (ans.status !== 200 && ans.status !== 401) problems.push(`B answered ${ans.status}: ${ans.text.slice(0, 200)}`);
            else if (want !== 0 && ans.status !== want) problems.push(`B answered ${ans.status} for a key that should get ${want}`);
            await sleep(5);
          }
        };
        verifier = Promise.all([verify(), verify()]).then(() => {});
      });

      after(async () => {
        stopVerifier = true;
        await verifier;
        closeQuery();
      });

      /** One change through A, as a client would make it; a dead connection (the kill) is expected, a 5xx never. */
      async function change(n: number): Promise<void> {
        const api = (method: string, path: string, body?: unknown) => call(a.url, method, '/gateway/v1' + path, adminKey, body);
        const unexpected = (what: string, ans: Answer) => {
          if ('error' in ans) count('connection lost');
          else problems.push(`A: ${what} answered ${ans.status}: ${ans.text.slice(0, 300)}`);
        };
        const r = Math.random();
        if (r < 0.4 && pool.length > 1) {
          const k = pool.splice(Math.floor(Math.random() * pool.length), 1)[0]!;
          const grace = r < 0.2 ? 0 : 1 + Math.floor(Math.random() * 3);
          const ans = await api('POST', `/keys/${k.id}/rotate`, { grace_seconds: grace });
          if ('error' in ans || ans.status !== 201) return unexpected('rotate', ans);
          remember(a, ans.body.id, ans.body.key);
          pool.push({ id: ans.body.id, secret: ans.body.key });
          if (grace === 0) acked.push({ secret: k.secret, at: Date.now() });
          count(`rotate grace ${grace === 0 ? '0' : '>0'}`);
        } else if (r < 0.5 && pool.length > 1) {
          const k = pool.splice(Math.floor(Math.random() * pool.length), 1)[0]!;
          const ans = await api('DELETE', `/keys/${k.id}`);
          if ('error' in ans || ans.status !== 204) return unexpected('revoke', ans);
          acked.push({ secret: k.secret, at: Date.now() });
          count('revoke');
        } else if (r < 0.7) {
          const user = `u${1 + Math.floor(Math.random() * 4)}`;
          const ans = Math.random() < 0.5 ? await api('PUT', `/teams/crew/members/${user}`, { role: pick(['member', 'viewer', 'admin']) }) : await api('DELETE', `/teams/crew/members/${user}`);
          if ('error' in ans || ![200, 201, 204, 404].includes(ans.status)) return unexpected('team member change', ans);
          count('team member');
        } else if (r < 0.8) {
          const ans = await api('POST', `/service-accounts/${pick(saIds)!}/keys`, { name: `stream ${n}` });
          if ('error' in ans || ans.status !== 201) return unexpected('service-account key', ans);
          remember(a, ans.body.id, ans.body.key);
          pool.push({ id: ans.body.id, secret: ans.body.key });
          count('service-account key');
        } else {
          // An SSO login through A: the first one of a person creates the account (JIT) and links the
          // identity; every one syncs the group → team roles of sso-crew and is audited.
          const person = Math.floor(Math.random() * 6);
          const browser = new Browser(a.url);
          let start;
          try {
            start = await browser.get('/login?org=crash', { 'sec-fetch-site': 'same-origin' });
          } catch {
            count('connection lost');
            return;
          }
          if (start.status !== 303 || !start.location) return unexpected('login start', { status: start.status, text: start.text, body: null });
          const u = new URL(start.location);
          const token = await idp.mint(u.searchParams.get('nonce')!, { claims: { sub: `person-${person}`, email: `person${person}@sso.crash.test`, groups: pick([[], ['eng'], ['leads'], ['eng', 'leads']]) } });
          try {
            const done = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
            if (done.status !== 303) return unexpected('login callback', { status: done.status, text: done.text, body: null });
            count('sso login');
          } catch {
            count('connection lost');
          }
        }
      }

      /** After a kill, B's answer for every key handed out agrees with the database. */
      async function checkBAgainstDatabase(killedAt: number): Promise<void> {
        await sleep(Math.max(0, killedAt + REVOCATION_BOUND_MS - Date.now()));
        const rows = await query('select id, revoked_at, expires_at from api_keys');
        const now = Date.now();
        for (const row of rows) {
          const secret = secrets.get(String(row.id as string));
          if (!secret) continue;
          const expires = row.expires_at ? Date.parse(String(row.expires_at as string)) : null;
          // A grace period ending right now: either answer is right.
          if (expires !== null && Math.abs(expires - now) < 2000) continue;
          const want = row.revoked_at !== null || (expires !== null && expires <= now) ? 401 : 200;
          const ans = await call(b.url, 'GET', '/auth/verify', secret);
          if ('error' in ans || ans.status !== want) problems.push(`after the kill, B answered ${'error' in ans ? ans.error : ans.status} for key ${String(row.id as string)}, which the database says ${want === 401 ? 'is dead' : 'is live'}`);
        }
      }

      test(`${ROUNDS} rounds: changes through A, kill -9 at a random moment, restart; nothing half-done, last_used_at within the flush interval, B right throughout`, async () => {
        // A key in use on A the whole time: its last_used_at may lose the last flush interval, no more.
        const inUse = ok(await call(a.url, 'POST', '/gateway/v1/me/keys', adminKey, { name: 'in use' }), 201, 'key');
        remember(a, inUse.id, inUse.key);
        for (let round = 1; round <= ROUNDS; round++) {
          if (round > 1) await a.restart();
          let stop = false;
          let n = 0;
          const stream = async () => {
            while (!stop) await change(n++);
          };
          let lastAnswered = 0;
          const use = async () => {
            while (!stop) {
              const ans = await call(a.url, 'GET', '/auth/verify', inUse.key);
              if (!('error' in ans) && ans.status === 200) lastAnswered = Date.now();
            }
          };
          const workers = [stream(), stream(), stream(), use()];
          await sleep(1000 + Math.random() * 1500);
          const killedAt = Date.now();
          await a.kill();
          stop = true;
          await Promise.all(workers);

          const [used] = await query(`select last_used_at from api_keys where id = '${inUse.id as string}'`);
          assert.ok(used?.last_used_at, `round ${round}: no last_used_at recorded`);
          const recorded = Date.parse(String(used.last_used_at as string));
          assert.ok(recorded <= killedAt + 50, `round ${round}: last_used_at ${new Date(recorded).toISOString()} is after the kill at ${new Date(killedAt).toISOString()}`);
          assert.ok(lastAnswered - recorded <= FLUSH_MS + FLUSH_MARGIN_MS, `round ${round}: last_used_at lost ${lastAnswered - recorded} ms of use (flush interval ${FLUSH_MS} ms)`);
          // (A key whose change was cut off mid-flight is in an unknown state: it already left the pool.)
          const violations = await changeAuditViolations(query, base);
          assert.deepEqual(violations, [], `round ${round}: half-done changes in the database`);
          await checkBAgainstDatabase(killedAt);
          assert.deepEqual(problems, [], `round ${round}`);
        }
        const audited = await query("select action, count(*) as n from audit_events where action in ('key.rotate', 'key.revoke', 'team.member.add', 'team.member.remove', 'key.create', 'sso.login') group by action");
        // The stream did change things (else the invariants hold vacuously).
        for (const action of ['key.rotate', 'key.revoke', 'team.member.add', 'sso.login']) assert.ok(audited.some((r) => r.action === action && Number(r.n) > 0), `no ${action} happened: ${JSON.stringify(audited)}`);
        assert.ok(verifications > 100, `B answered only ${verifications} verifications`);
        assert.ok((counts['connection lost'] ?? 0) > 0, 'some change was cut off by a kill');
        // The checks can fail: the same database with one rotation's or one membership change's audit event hidden is not whole.
        for (const action of ['key.rotate', 'key.revoke', 'key.create', 'sso.identity.link']) {
          const [last] = await query(`select max(seq) as s from audit_events where action = '${action}'`);
          const hidden: Query = async (text) => (await query(text)).filter((r) => !(text.includes('from audit_events') && r.action === action && Number(r.seq) === Number(last?.s)));
          assert.notDeepEqual(await changeAuditViolations(hidden, base), [], `without the last ${action} event the database looks whole`);
        }
        const memberGone: Query = async (text) => (await query(text)).slice(text.includes('from team_members') ? 1 : 0);
        assert.notDeepEqual(await changeAuditViolations(memberGone, base), [], 'without a membership row the database looks whole');
      });

    });
  }

  describe('several instances starting at once on an empty database', () => {
    /**
     * 3 processes that migrate `databaseUrl` at the same instant: each loads and opens the database, then
     * all are told "go" together (a real start spreads them by seconds of module loading under load).
     */
    async function migrateAtOnce(databaseUrl: string): Promise<Array<{ applied?: string[]; error?: string }>> {
      const children = [0, 1, 2].map(() => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'support', 'faults', 'migrate-on-go.ts')], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', TRACKGATE_DATABASE_URL: databaseUrl }, stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        const ready = new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes('ready\n')) resolve();
          });
          child.once('exit', () => reject(new Error(`migrate-on-go exited before it was ready: ${out}`)));
        });
        const done = new Promise<string>((resolve) => child.once('close', () => resolve(out)));
        const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
        return { child, ready, done: done.finally(() => clearTimeout(t)) };
      });
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.child.stdin.end('go\n');
      const outs = await Promise.all(children.map((c) => c.done));
      return outs.map((o) => JSON.parse(o.split('\n').filter(Boolean).at(-1) ?? '{}') as { applied?: string[]; error?: string });
    }

    for (const dialect of ['postgres', 'sqlite'] as const) {
      test(`${dialect}: 3 processes migrating an empty database at the same instant apply each migration once, between them`, async () => {
        const dir = tempDir();
        const url = dialect === 'postgres' ? await createDatabase(`race_${randomBytes(4).toString('hex')}`) : `sqlite:${join(dir, 'race.db')}`;
        const results = await migrateAtOnce(url);
        assert.deepEqual(results.filter((r) => r.error), [], 'every process migrated without an error');
        const all = Object.keys(migrations(dialectCaps(dialect)));
        assert.deepEqual(results.flatMap((r) => r.applied ?? []).sort(), all, 'each migration applied by exactly one of them');
        const q = dialect === 'postgres' ? pgQuery(url) : sqliteQuery(join(dir, 'race.db')).query;
        assert.deepEqual((await q('select name, count(*) as n from kysely_migration group by name order by name')).map((r) => [r.name, Number(r.n)]), all.map((m) => [m, 1]));
      });
    }

    const env = (databaseUrl: string, dir: string) => ({ TRACKGATE_DATABASE_URL: databaseUrl, TRACKGATE_SECRET_KEY: randomBytes(32).toString('hex'), TRACKGATE_DATA_DIR: join(dir, 'data') });

    test('PostgreSQL: 3 instances start, each migration is applied once, the schema is complete', async () => {
      const dir = tempDir();
      const url = await createDatabase(`empty_${randomBytes(4).toString('hex')}`);
      const e = env(url, dir);
      await Promise.all([0, 1, 2].map(() => startGateway(e)));
      const q = pgQuery(url);
      const applied = await q('select name, count(*) as n from kysely_migration group by name order by name');
      assert.deepEqual(applied.map((r) => [r.name, Number(r.n)]), Object.keys(migrations(dialectCaps('postgres'))).map((m) => [m, 1]));
      // Complete: the same tables, columns and indexes as one instance migrating alone.
      const refUrl = await createDatabase(`ref_${randomBytes(4).toString('hex')}`);
      const ref = openDatabase(refUrl);
      await migrateToLatest(ref);
      await ref.close();
      const schema = async (qq: Query) => ({
        columns: await qq("select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = 'public' order by table_name, column_name"),
        indexes: await qq("select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by indexname"),
      });
      const [got, want] = [await schema(q), await schema(pgQuery(refUrl))];
      assert.ok(want.columns.length > 20);
      assert.deepEqual(got, want);
    });

    test('SQLite: 3 instances on one empty file start, each migration is applied once, the schema is complete', async () => {
      const dir = tempDir();
      const file = join(dir, 'trackgate.db');
      const e = env(`sqlite:${file}`, dir);
      await Promise.all([0, 1, 2].map(() => startGateway(e)));
      const got = sqliteQuery(file);
      const applied = await got.query('select name, count(*) as n from kysely_migration group by name order by name');
      assert.deepEqual(applied.map((r) => [r.name, Number(r.n)]), Object.keys(migrations(dialectCaps('sqlite'))).map((m) => [m, 1]));
      const refFile = join(dir, 'reference.db');
      const ref = openDatabase(`sqlite:${refFile}`);
      await migrateToLatest(ref);
      await ref.close();
      const want = sqliteQuery(refFile);
      const schema = (qq: Query) => qq("select type, name, tbl_name, sql from sqlite_master where name not like 'kysely_%' order by name");
      const [have, expected] = [await schema(got.query), await schema(want.query)];
      got.close();
      want.close();
      assert.ok(expected.length > 10);
      assert.deepEqual(have, expected);
    });
  });
});
