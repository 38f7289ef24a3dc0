/**
 * One-time login links (`trackgate bootstrap`, `trackgate login-link`): a
 * confirmation page that uses nothing, a POST that uses the link once and
 * starts a fresh session, refusals (used, expired, unknown, deactivated,
 * require_sso), the require_sso lockout guard, and the CLI end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { dialects, startApp } from './support/app.ts';
import { PrivateRedis, canRunPrivateRedis } from './support/faults/redis.ts';
import type { TestApp } from './support/app.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { loginLinkPath, signIn, textOf, WebBrowser } from './support/web.ts';
import { hashLoginToken } from '../src/web/login-links.service.ts';
import type { Page } from './support/web.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'trackgate');

function assertErrorPage(page: Page, status: number, code: string) {
  assert.equal(page.status, status, page.text.slice(0, 800));
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.text, new RegExp(`<code>${code}</code>`));
  assert.ok(!page.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session');
}

/** Opens a link's confirmation page; returns the form token of its button. */
async function confirm(b: WebBrowser, path: string): Promise<string> {
  const page = await b.get(path);
  assert.equal(page.status, 200, page.text.slice(0, 500));
  const formToken = /name="form_token" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(formToken);
  return formToken!;
}

let idp: JoseIdp;
before(async () => {
  idp = await startJoseIdp({ clientId: 'link-spa' });
});
after(() => idp.close());

for (const dialect of dialects()) {
  describe(`login links (${dialect})`, () => {
    let app: TestApp;
    let org = '';
    let adminKey = '';
    let adminEmail = '';

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true });
      const b = await app.bootstrap({ org: `link-${dialect}` });
      org = b.org;
      adminKey = b.adminKey;
      adminEmail = `admin@${org}.example`;
    });
    after(() => app.close());

    test('the link page uses nothing; its button signs in once, with a fresh session; the token is never logged', async () => {
      await app.createUser({ org, username: `lena-${dialect}` });
      const email = `lena-${dialect}@${org}.example`;
      const path = await loginLinkPath(app, email);
      assert.match(path, /^\/login\/link\/[A-Za-z0-9_-]{43}$/, '256-bit token');
      const b = new WebBrowser(app);
      // Previews and scanners fetch links: GET shows a button and changes nothing.
      await confirm(b, path);
      const page = await b.get(path);
      assert.match(textOf(page.text), new RegExp(`signs you in as lena-${dialect}`));
      assert.match(page.text, /<form method="post" action="\/login\/link\//);
      assert.doesNotMatch(page.text, /<script>/);
      const formToken = /name="form_token" value="([^"]+)"/.exec(page.text)![1]!;

      // A browser that already had someone's session gets a new one.
      const before = await signIn(app, adminEmail);
      const oldSid = before.jar.get('trackgate.sid');
      before.jar.set('trackgate.link', b.jar.get('trackgate.link')!);
      before.paths.set('trackgate.link', '/login/link');
      const r = await before.post(path, { form_token: formToken });
      assert.equal(r.status, 303, r.text.slice(0, 500));
      assert.equal(r.location, '/settings');
      const cookie = r.setCookies.find((c) => c.startsWith('trackgate.sid='));
      assert.ok(cookie, 'a session cookie');
      assert.match(cookie!, /HttpOnly/i);
      assert.match(cookie!, /SameSite=Lax/i);
      assert.notEqual(before.jar.get('trackgate.sid'), oldSid, 'a new session id');
      const session = await before.request('GET', '/gateway/v1/session', { headers: { accept: 'application/json' } });
      assert.equal(session.status, 200);
      assert.equal(JSON.parse(session.text).username, `lena-${dialect}`);
      assert.equal(JSON.parse(session.text).connection_id, null);
      assert.equal((await before.get('/settings')).status, 200);

      // Used: refused, on the page and on the button.
      assertErrorPage(await b.get(path), 410, 'link_used');
      assertErrorPage(await b.post(path, { form_token: formToken }), 410, 'link_used');
      const audit = await app.request('GET', `/gateway/v1/orgs/${org}/audit?action=login.link`, { key: adminKey });
      assert.ok(audit.body.events.some((e: any) => e.target.name === `lena-${dialect}`));
      // Unknown and malformed tokens.
      assertErrorPage(await b.get(`/login/link/${'A'.repeat(43)}`), 404, 'link_unknown');
      assertErrorPage(await b.get('/login/link/short'), 404, 'link_unknown');
      // The request log names the path without the token.
      const token = path.split('/').pop()!;
      const log = readFileSync(app.logFile, 'utf8');
      assert.ok(!log.includes(token), 'the login token is not in the log');
      assert.match(log, /\/login\/link\/\[redacted\]/);
    });

    test('the button needs the cookie of the page that showed it (no cross-site use); a refused press leaves the link usable', async () => {
      await app.createUser({ org, username: `cy-${dialect}` });
      const path = await loginLinkPath(app, `cy-${dialect}@${org}.example`);
      const b = new WebBrowser(app);
      const formToken = await confirm(b, path);
      const stranger = new WebBrowser(app);
      assertErrorPage(await stranger.post(path, { form_token: formToken }), 403, 'link_confirmation_failed');
      assertErrorPage(await b.post(path, { form_token: 'forged' }), 403, 'link_confirmation_failed');
      assertErrorPage(await b.post(path, {}), 403, 'link_confirmation_failed');
      assert.equal((await b.post(path, { form_token: formToken })).status, 303, 'still usable');
    });

    test('two presses at once: exactly one signs in', async () => {
      await app.createUser({ org, username: `duo-${dialect}` });
      const path = await loginLinkPath(app, `duo-${dialect}@${org}.example`);
      const a = new WebBrowser(app);
      const b = new WebBrowser(app);
      const [na, nb] = [await confirm(a, path), await confirm(b, path)];
      const results = await Promise.all([a.post(path, { form_token: na }), b.post(path, { form_token: nb })]);
      assert.deepEqual(results.map((r) => r.status).sort(), [303, 410]);
    });

    test('an expired link is refused', async () => {
      await app.createUser({ org, username: `old-${dialect}` });
      await app.createUser({ org, username: `fresh-${dialect}` });
      const path = await loginLinkPath(app, `old-${dialect}@${org}.example`);
      const other = await loginLinkPath(app, `fresh-${dialect}@${org}.example`);
      const b = new WebBrowser(app);
      const formToken = await confirm(b, path);
      // This test's link only: other tests' links in the shared database stay as they are.
      const tokenHash = hashLoginToken(path.split('/').pop()!);
      const expired = await sql`update login_links set expires_at = ${new Date(Date.now() - 1000).toISOString()} where token_hash = ${tokenHash}`.execute(app.gw.core.database.db);
      assert.equal(Number(expired.numAffectedRows), 1);
      assertErrorPage(await b.get(path), 410, 'link_expired');
      assertErrorPage(await b.post(path, { form_token: formToken }), 410, 'link_expired');
      // A link issued alongside it still works.
      const c = new WebBrowser(app);
      assert.equal((await c.post(other, { form_token: await confirm(c, other) })).status, 303);
    });

    test('a deactivated person is refused (the link stays usable if they are reactivated in time)', async () => {
      const u = await app.createUser({ org, username: `dee-${dialect}` });
      const path = await loginLinkPath(app, `dee-${dialect}@${org}.example`);
      const b = new WebBrowser(app);
      const formToken = await confirm(b, path);
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}/users/${u.username}`, { key: adminKey, body: { status: 'deactivated' } })).status, 200);
      assertErrorPage(await b.get(path), 403, 'user_deactivated');
      assertErrorPage(await b.post(path, { form_token: formToken }), 403, 'user_deactivated');
      const refused = await app.request('GET', `/gateway/v1/orgs/${org}/audit?action=login.link_refused`, { key: adminKey });
      assert.equal(refused.body.events[0].details.code, 'user_deactivated');
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}/users/${u.username}`, { key: adminKey, body: { status: 'active' } })).status, 200);
      assert.equal((await b.post(path, { form_token: formToken })).status, 303);
    });

    test('require_sso: refused while the organization has no enabled connection (409); then links work for the operator only', async () => {
      const slug = `sso-only-${dialect}`;
      assert.equal((await app.request('POST', '/gateway/v1/orgs', { key: adminKey, body: { slug, name: slug, plan: 'enterprise' } })).status, 201);
      const member = await app.request('POST', `/gateway/v1/orgs/${slug}/users`, { key: adminKey, body: { email: `max@${slug}.example`, username: `max-${dialect}`, role: 'admin' } });
      assert.equal(member.status, 201, member.text);

      // The lockout guard: no connection at all, then only a disabled one.
      let r = await app.request('PATCH', `/gateway/v1/orgs/${slug}`, { key: adminKey, body: { policies: { require_sso: true } } });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'sso_not_configured');
      assert.match(r.body.error.message, /has no enabled SSO connection/);
      const conn = await app.request('POST', `/gateway/v1/orgs/${slug}/sso`, { key: adminKey, body: { issuer: idp.issuer, client_id: 'link-spa', domains: [`${slug}.example`], enabled: false } });
      assert.equal(conn.status, 201, conn.text);
      r = await app.request('PATCH', `/gateway/v1/orgs/${slug}`, { key: adminKey, body: { policies: { require_sso: true } } });
      assert.equal(r.status, 409);
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${slug}/sso/${conn.body.id}`, { key: adminKey, body: { enabled: true } })).status, 200);

      // A person signed in by link before the policy...
      const max = await signIn(app, `max@${slug}.example`);
      assert.equal((await max.get('/settings')).status, 200);
      r = await app.request('PATCH', `/gateway/v1/orgs/${slug}`, { key: adminKey, body: { policies: { require_sso: true } } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.policies.require_sso, true);
      // The other half of the guard: the last enabled connection can be neither turned off nor deleted.
      const off = await app.request('PATCH', `/gateway/v1/orgs/${slug}/sso/${conn.body.id}`, { key: adminKey, body: { enabled: false } });
      assert.equal(off.status, 409, off.text);
      assert.equal(off.body.error.code, 'sso_required_by_policy');
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${slug}/sso/${conn.body.id}`, { key: adminKey })).status, 409);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${slug}/sso/${conn.body.id}`, { key: adminKey })).body.enabled, true);
      // ...loses that session, and new links are refused.
      assert.equal((await max.get('/settings')).status, 302);
      const path = await loginLinkPath(app, `max@${slug}.example`);
      const b = new WebBrowser(app);
      const page = await b.get(path);
      assertErrorPage(page, 403, 'sso_required');
      assert.match(textOf(page.text), /requires single sign-on/);

      // The instance operator still gets in (to repair a broken SSO setup), in their own organization too.
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { require_sso: true } } })).status, 409, 'the operator\'s own organization has no connection');
      const own = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: idp.issuer, client_id: 'link-spa', domains: [`${org}.example`] } });
      assert.equal(own.status, 201, own.text);
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { require_sso: true } } })).status, 200);
      const op = await signIn(app, adminEmail);
      assert.equal((await op.get('/admin')).status, 200);
      // The policy form on the admin page states the same rule: off again, then on (a connection exists).
      const csrf = WebBrowser.csrf((await op.get('/admin')).text);
      assert.equal((await op.post('/admin/policies', { csrf_token: csrf })).status, 303);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}`, { key: adminKey })).body.policies.require_sso, false);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/sso/${own.body.id}`, { key: adminKey })).status, 204);
      const locked = await op.post('/admin/policies', { csrf_token: csrf, require_sso: 'on' });
      assert.equal(locked.status, 409);
      assert.match(textOf(locked.text), /no enabled SSO connection/);
    });

    test('one bad link reloaded many times counts once: a good link from the same address still works', async () => {
      const b = new WebBrowser(app);
      const stale = `/login/link/${'s'.repeat(43)}`;
      for (let i = 0; i < 30; i++) assert.notEqual((await b.get(stale)).status, 429, `reload ${i}`);
      await app.createUser({ org, username: `next-${dialect}` });
      await confirm(b, await loginLinkPath(app, `next-${dialect}@${org}.example`));
    });

    test('many different bad links from one address are slowed down (429)', async () => {
      const b = new WebBrowser(app);
      let status = 0;
      for (let i = 0; i < 25 && status !== 429; i++) status = (await b.get(`/login/link/${String(i).padStart(43, 'x')}`)).status;
      assert.equal(status, 429);
    });
  });
}

describe('CLI: bootstrap and login-link print a working one-time link', () => {
  let dir: string;
  let app: TestApp;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trackgate-link-cli-'));
  });
  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('bootstrap --json has login_url; login-link --email prints another; both sign in', async () => {
    const db = `sqlite:${join(dir, 'tg.db')}`;
    const env = { PATH: process.env.PATH, HOME: dir, TRACKGATE_DATABASE_URL: db, TRACKGATE_LOG_LEVEL: 'warn', TRACKGATE_PUBLIC_URL: 'https://gw.example.com' };
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
    const boot = run(['bootstrap', '--email', 'root@example.com', '--org', 'acme', '--json']);
    assert.equal(boot.status, 0, boot.stderr);
    const out = JSON.parse(boot.stdout);
    assert.match(out.login_url, /^https:\/\/gw\.example\.com\/login\/link\/[A-Za-z0-9_-]{43}$/);
    app = await startApp('sqlite', { databaseUrl: db });
    app.keys.add(out.api_key);
    const b = new WebBrowser(app);
    const path = new URL(out.login_url).pathname;
    assert.equal((await b.post(path, { form_token: await confirm(b, path) })).status, 303);
    assert.equal((await b.get('/settings')).status, 200);

    const text = run(['login-link', '--email', 'Root@Example.com']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /One-time login link for .* <root@example\.com> in "acme"/);
    const json = run(['login-link', '--email', 'root@example.com', '--json']);
    const link = JSON.parse(json.stdout);
    assert.equal(link.user.email, 'root@example.com');
    assert.equal(link.org, 'acme');
    const b2 = new WebBrowser(app);
    const p2 = new URL(link.login_url).pathname;
    assert.equal((await b2.post(p2, { form_token: await confirm(b2, p2) })).status, 303);
    const unknown = run(['login-link', '--email', 'nobody@example.com']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /user with email "nobody@example.com" not found/);
  });
});

describe('login links while Redis (the session store) is down', { skip: !canRunPrivateRedis() && 'no redis-server on this machine' }, () => {
  let redis: PrivateRedis;
  let app: TestApp;
  let org = '';
  before(async () => {
    redis = await PrivateRedis.start();
    app = await startApp('sqlite', { redisUrl: redis.url });
    org = (await app.bootstrap({ org: 'link-redis' })).org;
  });
  after(async () => {
    await app.close();
    await redis.kill();
  });

  test('pressing the button fails fast with a 503 page and leaves the link usable once Redis is back', async () => {
    await app.createUser({ org, username: 'rita' });
    const path = await loginLinkPath(app, `rita@${org}.example`);
    const b = new WebBrowser(app);
    const formToken = await confirm(b, path);
    await redis.kill();
    const started = Date.now();
    const down = await b.post(path, { form_token: formToken });
    const took = Date.now() - started;
    assertErrorPage(down, 503, 'unavailable');
    assert.ok(took < 3000, `answered in ${took} ms, not after the client's retries`);
    await redis.startServer();
    // The link was not used up by the failed attempt.
    let signedIn = 0;
    for (let i = 0; i < 50 && signedIn !== 303; i++) {
      const again = await b.post(path, { form_token: await confirm(b, path) });
      signedIn = again.status;
      if (signedIn !== 303) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(signedIn, 303, 'the same link signs in once Redis is back');
  });
});
