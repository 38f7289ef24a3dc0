import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { basic, startApp } from './support/app.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'trackgate');

/**
 * The port a `serve` child announces in its start-up log line. A bound on liveness, not a speed check: the CLI
 * runs the sources through tsx, and on a loaded 2-core CI machine (the suite's files run side by side) a start
 * took over 20 s. The child is killed when it does not start, so that it cannot outlive the test.
 */
function listeningPort(child: ChildProcess, output: () => string, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start within 90 s: ${output()}`));
    }, 90_000);
    child.stdout!.on('data', () => {
      const m = /"port":(\d+)/.exec(output());
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
}

describe('CLI and configuration', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trackgate-cli-'));
    env = { PATH: process.env.PATH, HOME: dir, TRACKGATE_DATABASE_URL: `sqlite:${join(dir, 'tg.db')}`, TRACKGATE_LOG_LEVEL: 'warn' };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', cwd: join(import.meta.dirname, '..') });

  let adminKey = '';
  let servedPort = 0;

  test('bootstrap --json creates the organization and its admin and prints a key', () => {
    const r = run(['bootstrap', '--email', 'Root@Example.com', '--org', 'acme', '--plan', 'enterprise', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.org.slug, 'acme');
    assert.equal(out.org.plan, 'enterprise');
    assert.equal(out.user.email, 'root@example.com');
    assert.equal(out.user.role, 'admin');
    assert.equal(out.user.instance_admin, true);
    assert.match(out.api_key, /^tgp-[A-Za-z0-9]{40}$/);
    // No TRACKGATE_PUBLIC_URL and no server has run yet: the URL is a guess, and said to be one.
    assert.equal(out.public_url_source, 'assumed');
    adminKey = out.api_key;
  });

  test('bootstrap again for an existing email fails clearly and changes nothing', () => {
    const db = new Database(join(dir, 'tg.db'), { readonly: true });
    const count = () => db.prepare('select (select count(*) from orgs) + (select count(*) from users) + (select count(*) from api_keys) as n').get() as { n: number };
    const before = count().n;
    const r = run(['bootstrap', '--email', 'root@example.com', '--org', 'other']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /already exists; nothing was changed/);
    assert.equal(count().n, before);
    db.close();
  });

  test('bootstrap rejects a bad email or slug with a message naming it', () => {
    const r = run(['bootstrap', '--email', 'nope', '--org', 'acme2']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--email/);
    const s = run(['bootstrap', '--email', 'x@example.com', '--org', 'Bad Slug']);
    assert.notEqual(s.status, 0);
    assert.match(s.stderr, /--org/);
  });

  test('users create --with-key --json', () => {
    const r = run(['users', 'create', '--org', 'acme', '--email', 'dev@example.com', '--username', 'dev', '--with-key', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.user.username, 'dev');
    assert.equal(out.user.role, 'member');
    assert.match(out.api_key, /^tgp-/);
    const again = run(['users', 'create', '--org', 'acme', '--email', 'dev2@example.com', '--username', 'dev']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already taken/);
    const noOrg = run(['users', 'create', '--org', 'nosuch', '--email', 'x@example.com', '--username', 'x']);
    assert.notEqual(noOrg.status, 0);
    assert.match(noOrg.stderr, /organization "nosuch" not found/);
  });

  test('the compiled build (what npm start runs) serves the hot paths, the management worker and the static files', async () => {
    const root = join(import.meta.dirname, '..');
    // Built into a folder of its own beside dist/ (so that node_modules and package.json are found the same
    // way), leaving a dist/ someone is running as it is.
    const out = mkdtempSync(join(root, '.build-test-'));
    try {
      const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--out', out], { encoding: 'utf8', cwd: root });
      assert.equal(build.status, 0, build.stdout + build.stderr);
      const child = spawn(process.execPath, [join(out, 'cli', 'main.js'), 'serve'], { env: { ...env, TRACKGATE_PORT: '0', TRACKGATE_HOST: '127.0.0.1', TRACKGATE_LOG_LEVEL: 'info' }, cwd: root });
      let log = '';
      child.stdout.on('data', (d) => (log += d));
      child.stderr.on('data', (d) => (log += d));
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const port = await listeningPort(child, () => log, 'the build');
        const base = `http://127.0.0.1:${port}`;
        const verify = await fetch(`${base}/auth/verify`, { headers: { authorization: basic(adminKey) } });
        assert.equal(verify.status, 200);
        assert.ok(verify.headers.get('x-trackgate-assertion'));
        const me = await fetch(`${base}/gateway/v1/me`, { headers: { authorization: basic(adminKey) } });
        assert.equal(me.status, 200, 'the management worker runs from the build');
        const page = await fetch(`${base}/login`);
        assert.equal(page.status, 200);
        const css = /href="(\/static\/[^"]+\.css)"/.exec(await page.text());
        assert.ok(css, 'the login page links its stylesheet');
        assert.equal((await fetch(`${base}${css[1]}`)).status, 200, 'static files are part of the build');
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exit, 0, log);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('serve shares the SQLite file with the CLI and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...env, TRACKGATE_PORT: '0', TRACKGATE_HOST: '127.0.0.1', TRACKGATE_LOG_LEVEL: 'info' }, cwd: join(import.meta.dirname, '..') });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const port = await listeningPort(child, () => out, 'serve');
    const me = await fetch(`http://127.0.0.1:${port}/gateway/v1/me`, { headers: { authorization: basic(adminKey) } });
    assert.equal(me.status, 200);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
    assert.ok(!out.includes(adminKey), 'the server log holds no key');
    servedPort = port;
  });

  test('the CLI prints login links to the URL the running server announced, and says so', () => {
    assert.ok(servedPort > 0);
    const r = run(['login-link', '--email', 'root@example.com']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`http://localhost:${servedPort}/login/link/`), 'the server ran on another port than the CLI would guess (8080)');
    assert.match(r.stdout, /the URL the server announced at/);
    const configured = run(['login-link', '--email', 'root@example.com', '--json'], { TRACKGATE_PUBLIC_URL: 'https://gw.example.com' });
    const link = JSON.parse(configured.stdout);
    assert.match(link.login_url, /^https:\/\/gw\.example\.com\/login\/link\//);
    assert.equal(link.public_url_source, 'configured');
  });

  test('an unknown or invalid setting stops the service with a message naming it', () => {
    const unknown = run(['serve'], { TRACKGATE_BOGUS_SETTING: '1' });
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /unknown environment variable TRACKGATE_BOGUS_SETTING/);
    const invalid = run(['serve'], { TRACKGATE_PORT: 'eighty' });
    assert.notEqual(invalid.status, 0);
    assert.match(invalid.stderr, /TRACKGATE_PORT: must be a whole number from 0 to 65535/);
    assert.doesNotMatch(invalid.stderr, /NaN|\n\s+at /, 'no zod jargon, no stack trace');
    const typo = run(['serve'], { TRACKGATE_PROT: '8080' });
    assert.match(typo.stderr, /unknown environment variable TRACKGATE_PROT: did you mean TRACKGATE_PORT\?/);
    const proxies = run(['serve'], { TRACKGATE_TRUSTED_PROXIES: 'bogus' });
    assert.match(proxies.stderr, /TRACKGATE_TRUSTED_PROXIES: "bogus" is not an IP address or CIDR/);
    assert.doesNotMatch(proxies.stderr, /\n\s+at /);
    // The README asks for 64 hex characters; a 42-character passphrase was accepted before.
    const weak = run(['serve'], { TRACKGATE_SECRET_KEY: 'a'.repeat(42) });
    assert.match(weak.stderr, /TRACKGATE_SECRET_KEY: must be 64 hex characters/);
    assert.doesNotMatch(weak.stderr, /a{42}/, 'the error does not echo the secret');
    const badDb = run(['migrate'], { TRACKGATE_DATABASE_URL: 'mysql://x' });
    assert.notEqual(badDb.status, 0);
    assert.match(badDb.stderr, /TRACKGATE_DATABASE_URL: must be sqlite:<file path> or postgres/);
  });
});

describe('graceful shutdown', () => {
  test('an in-flight request finishes; new connections are refused', async () => {
    const app = await startApp('sqlite');
    const { adminKey } = await app.bootstrap();
    const url = new URL(app.url + '/gateway/v1/me/keys');
    const body = JSON.stringify({ name: 'in-flight' });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      // Half the body now, the rest after shutdown has begun.
      req.write(body.slice(0, 5));
      setTimeout(() => req.end(body.slice(5)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const closing = app.close();
    const r = await response;
    assert.equal(r.status, 201, r.text);
    await closing;
    await assert.rejects(fetch(app.url + '/healthz'));
  });
});

describe('the secret key', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trackgate-secret-'));
    env = { PATH: process.env.PATH, HOME: dir, TRACKGATE_DATABASE_URL: `sqlite:${join(dir, 'tg.db')}`, TRACKGATE_LOG_LEVEL: 'warn', TRACKGATE_PORT: '0', TRACKGATE_HOST: '127.0.0.1' };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', cwd: join(import.meta.dirname, '..'), timeout: 90_000 });
  /** Starts `serve` and stops it once it listens (the signing key is made and sealed on the way), or returns its failure. */
  const serveOnce = async (extraEnv: NodeJS.ProcessEnv = {}): Promise<{ started: boolean; stderr: string }> => {
    const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...env, ...extraEnv, TRACKGATE_LOG_LEVEL: 'info' }, cwd: join(import.meta.dirname, '..') });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const started = await Promise.race([listeningPort(child, () => out, 'serve').then(() => true), exit.then(() => false)]);
    if (started) {
      child.kill('SIGTERM');
      await exit;
    }
    return { started, stderr: err };
  };

  test('a changed key is named as the problem, with the way out; rotate-secret-key re-seals; a wrong old key changes nothing', async () => {
    assert.equal((await serveOnce()).started, true, 'first start generates data/secret.key and seals a signing key with it');
    const oldKeyFile = join(dir, 'secret.key');
    const newKey = randomBytes(32).toString('hex');

    const refused = await serveOnce({ TRACKGATE_SECRET_KEY: newKey });
    assert.equal(refused.started, false);
    assert.match(refused.stderr, /the secret key \(TRACKGATE_SECRET_KEY\) does not match the one that sealed this database's secrets/);
    assert.match(refused.stderr, /rotate-secret-key --from-file/);
    assert.doesNotMatch(refused.stderr, /Unsupported state|\n\s+at /);
    assert.ok(!refused.stderr.includes(newKey), 'the key is never printed');

    const wrongOld = join(dir, 'wrong.key');
    writeFileSync(wrongOld, randomBytes(32).toString('hex'));
    const wrong = run(['rotate-secret-key', '--from-file', wrongOld], { TRACKGATE_SECRET_KEY: newKey });
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stderr, /opens with neither the old key given nor the current one.*Nothing was changed/);

    const rotated = run(['rotate-secret-key', '--from-file', oldKeyFile, '--json'], { TRACKGATE_SECRET_KEY: newKey });
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.deepEqual(JSON.parse(rotated.stdout), { resealed: 1, already_new: 0 });
    const again = run(['rotate-secret-key', '--from-file', oldKeyFile, '--json'], { TRACKGATE_SECRET_KEY: newKey });
    assert.deepEqual(JSON.parse(again.stdout), { resealed: 0, already_new: 1 }, 'idempotent');
    assert.equal((await serveOnce({ TRACKGATE_SECRET_KEY: newKey })).started, true, 'the new key opens what was re-sealed');
    assert.equal((await serveOnce()).started, false, 'and the old key (data/secret.key) no longer does');
  });
});
