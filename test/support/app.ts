import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createTrackgate } from '../../src/app.ts';
import type { Trackgate } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { ConfigInput } from '../../src/config/config.ts';
import { createLogger } from '../../src/log/logger.ts';
import { ProvisioningService } from '../../src/users/provisioning.ts';

export type Dialect = 'sqlite' | 'postgres';

const PG_URL = process.env.TRACKGATE_TEST_DATABASE_URL;
let skipNoticeShown = false;

/**
 * The databases a suite runs against: always SQLite, and PostgreSQL when
 * TRACKGATE_TEST_DATABASE_URL is set. Without it, a skipped test says so
 * plainly in the output.
 */
export function dialects(): Dialect[] {
  if (!PG_URL) {
    if (!skipNoticeShown) {
      skipNoticeShown = true;
      test('PostgreSQL suite', { skip: 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set, so only SQLite was tested' }, () => {});
    }
    return ['sqlite'];
  }
  return ['sqlite', 'postgres'];
}

/** A fresh, empty PostgreSQL database for one app instance; dropped at close. */
async function createPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tg_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_URL!);
  url.pathname = '/' + name;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** API keys, SCIM tokens (tgscim-…) and federation access tokens (tga-…): every secret the app hands out is checked against its log. */
const KEY_PATTERN = /tg(?:[psa]|scim)-[A-Za-z0-9]{40}/g;

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface TestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface TestApp {
  dialect: Dialect;
  url: string;
  databaseUrl: string;
  gw: Trackgate;
  logFile: string;
  /** Every API key this app handed out, for the log-redaction check. */
  keys: Set<string>;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<TestResponse<T>>;
  /** Creates an organization with an admin (instance operator) directly, as `trackgate bootstrap` does. */
  bootstrap(input?: { org?: string; email?: string; plan?: 'standard' | 'enterprise' }): Promise<{ org: string; adminKey: string; admin: string }>;
  /** Creates a user with a personal key, as `trackgate users create --with-key` does. */
  createUser(input: { org: string; username: string; role?: 'admin' | 'member' | 'viewer'; email?: string }): Promise<{ key: string; username: string }>;
  close(): Promise<void>;
}

export function basic(key: string): string {
  return 'Basic ' + Buffer.from('api:' + key).toString('base64');
}

export function recordKeys(keys: Set<string>, text: string): void {
  for (const m of text.matchAll(KEY_PATTERN)) keys.add(m[0]);
}

/** Log files of every app of this test run, and the keys each handed out: run-tests.mjs greps them all at the end. */
function runDir(): string | null {
  const dir = process.env.TRACKGATE_TEST_RUN_DIR;
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function startApp(dialect: Dialect, overrides: ConfigInput = {}, options: { shareWith?: TestApp } = {}): Promise<TestApp> {
  const tmp = mkdtempSync(join(tmpdir(), 'trackgate-test-'));
  // A second instance on the same database (the scaled setup) neither creates nor drops it.
  const pgDb = dialect === 'postgres' && !options.shareWith ? await createPgDatabase() : null;
  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const shared = runDir();
  const logFile = shared ? join(shared, `${id}.log`) : join(tmp, 'trackgate.log');
  const config = loadConfig({
    env: {},
    configDir: join(tmp, 'no-config'),
    overrides: {
      port: 0,
      host: '127.0.0.1',
      databaseUrl: options.shareWith ? options.shareWith.databaseUrl : pgDb ? pgDb.url : `sqlite:${join(tmp, 'trackgate.db')}`,
      // Instances of one deployment share the secret key, kept in the first one's data folder.
      dataDir: options.shareWith ? options.shareWith.gw.core.config.dataDir : tmp,
      // Trace level so that the redaction check sees everything the service could log.
      logLevel: 'trace',
      lastUsedFlushMs: 50,
      // The management worker writes its own log lines into the same file.
      logFile,
      authFailureLimit: 1000,
      // Many SSO logins from 127.0.0.1 per test file: the tests of the limit set their own.
      loginStartLimit: 1000,
      // Every API answer is checked against the schema its route declares: a mismatch is a 500 that fails the test.
      validateResponses: true,
      ...overrides,
    },
  });
  const logger = createLogger({ level: config.logLevel, file: logFile });
  const gw = await createTrackgate(config, { logger });
  const { url } = await gw.listen();
  const keys = new Set<string>();
  const provisioning = new ProvisioningService(gw.core.store, gw.core.users, gw.core.keys, gw.core.audit, gw.core.invalidator);

  const app: TestApp = {
    dialect,
    url,
    databaseUrl: config.databaseUrl,
    gw,
    logFile,
    keys,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.key) headers.authorization = basic(options.key);
      let body: string | undefined;
      if (options.rawBody !== undefined) body = options.rawBody;
      else if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body, redirect: 'manual' });
      const text = await res.text();
      recordKeys(keys, text);
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, headers: res.headers, body: parsed as never, text };
    },
    async bootstrap(input = {}) {
      const org = input.org ?? `org-${randomBytes(3).toString('hex')}`;
      const r = await provisioning.bootstrap({ email: input.email ?? `admin@${org}.example`, org, plan: input.plan ?? 'enterprise', username: `${org}-admin` });
      keys.add(r.api_key);
      return { org, adminKey: r.api_key, admin: r.user.username };
    },
    async createUser(input) {
      const r = await provisioning.createUser({ org: input.org, email: input.email ?? `${input.username}@${input.org}.example`, username: input.username, role: input.role ?? 'member', withKey: true });
      keys.add(r.api_key!);
      return { key: r.api_key!, username: r.user.username };
    },
    async close() {
      await gw.close();
      if (shared) appendFileSync(join(shared, `${id}.keys`), [...keys].join('\n') + '\n');
      // Second line of the redaction check, per app: none of its keys in its log.
      const log = readFileSync(logFile, 'utf8');
      for (const k of keys) assert.ok(!log.includes(k), `API key ${k.slice(0, 10)}... appears in the log ${logFile}`);
      // An answer that broke its declared schema was a 500; this fails the test even where it did not look at the status.
      assert.ok(!log.includes('does not match its declaration'), `an API answer did not match its declared schema: see ${logFile}`);
      if (pgDb) await pgDb.drop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  return app;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
