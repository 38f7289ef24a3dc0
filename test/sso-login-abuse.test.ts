/**
 * Abuse of the SSO login's entry points, over HTTP against a running app and
 * a hand-made IdP (jose) that signs whatever an attacker asks:
 * - login CSRF: a link from another site must not sign a browser in to the
 *   attacker's account, nor silently replace the session of who is signed in;
 * - login starts are limited per address, and pending attempts per browser;
 * - text from a login answer (error_description, ?org=) is not shown before
 *   the answer is known to belong to this browser's login, and is cut after;
 * - Redis keys of sessions and login attempts follow TRACKGATE_REDIS_KEY_PREFIX.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { dialects, startApp } from './support/app.ts';
import type { Dialect, TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { freePort } from './support/net.ts';
import { RedisKeyspace } from '../src/redis/keyspace.ts';

const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;
const SAME = { 'sec-fetch-site': 'same-origin' };

let jose: JoseIdp;
before(async () => {
  jose = await startJoseIdp({ clientId: 'abuse-spa' });
});
after(() => jose.close());

test('the Redis key families keep the names deployed keys have (a rename would orphan them)', () => {
  const k = new RedisKeyspace('trackgate:');
  assert.deepEqual(
    [k.sessions, k.sessionsOfUser, k.loginTransactions, k.loginTransactionsOfBrowser, k.authFailures, k.loginStarts, k.invalidationChannel],
    ['trackgate:sess:', 'trackgate:sess:user:', 'trackgate:login-tx:', 'trackgate:login-tx-of:', 'trackgate:authfail', 'trackgate:loginstart', 'trackgate:invalidate'],
  );
});

function decode(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function hiddenFields(html: string): Record<string, string> {
  return Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, decode(m[2]!)]));
}

function textOf(html: string): string {
  return decode(html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' '));
}

async function startTestApp(dialect: Dialect, overrides: Record<string, unknown> = {}, options: { shareWith?: TestApp } = {}) {
  const port = await freePort();
  return startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, ssoJwksCooldownSeconds: 0, ...overrides }, options);
}

/** An organization signing in with the jose IdP (JIT on). */
async function ssoOrg(app: TestApp, slug: string): Promise<{ org: string; adminKey: string }> {
  const b = await app.bootstrap({ org: slug });
  const r = await app.request('POST', `/gateway/v1/orgs/${b.org}/sso`, { key: b.adminKey, body: { issuer: jose.issuer, client_id: 'abuse-spa', domains: [`${slug}.test`], jit: true } });
  assert.equal(r.status, 201, r.text);
  return { org: b.org, adminKey: b.adminKey };
}

/** The IdP's answer for a login the browser was sent to (the state and nonce of its authorization URL). */
async function answer(browser: Browser, idpUrl: string, who: string, org: string) {
  const u = new URL(idpUrl);
  const token = await jose.mint(u.searchParams.get('nonce')!, { claims: { sub: `${who}-sub`, email: `${who}@${org}.test`, email_verified: true } });
  return browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
}

/** A same-origin start (as trackgate's own pages make it) and the IdP's answer: signed in. */
async function signIn(browser: Browser, who: string, org: string) {
  const start = await browser.get(`/login?org=${org}`, SAME);
  assert.equal(start.status, 303, start.text);
  const r = await answer(browser, start.location!, who, org);
  assert.equal(r.status, 303, r.text);
  return r;
}

async function me(browser: Browser) {
  const r = await browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
  return { status: r.status, body: r.text ? JSON.parse(r.text) : null };
}

const runs: Array<{ dialect: Dialect; tag: string; redis: boolean }> = dialects().map((d) => ({ dialect: d, tag: d, redis: false }));
if (REDIS_URL) runs.push({ dialect: 'sqlite', tag: 'redis', redis: true });
else test('login abuse with Redis', { skip: 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set' }, () => {});

for (const { dialect, tag, redis } of runs) {
  describe(`SSO login abuse (${tag})`, () => {
    let app: TestApp;
    let redisClient: Redis | null = null;
    const prefix = `tg-abuse-${randomBytes(3).toString('hex')}:`;
    const suffix = `${tag}-${randomBytes(2).toString('hex')}`;
    let orgA: string;
    let orgB: { org: string; adminKey: string };

    before(async () => {
      app = await startTestApp(dialect, { loginStartLimit: 1000, ...(redis ? { redisUrl: REDIS_URL, redisKeyPrefix: prefix } : {}) });
      if (redis) redisClient = new Redis(REDIS_URL!);
      orgA = (await ssoOrg(app, `alpha-${suffix}`)).org;
      orgB = await ssoOrg(app, `orgb-${suffix}`);
    });
    after(async () => {
      await redisClient?.quit();
      await app.close();
    });

    /** Login attempts stored right now (database rows, or Redis keys). */
    async function pending(): Promise<number> {
      if (redisClient) return (await redisClient.keys(`${prefix}login-tx:*`)).length;
      const r = await sql<{ n: number | string }>`select count(*) as n from login_transactions`.execute(app.gw.core.database.db);
      return Number(r.rows[0]!.n);
    }

    test('login CSRF: a cross-site link to /login?org= starts nothing, it asks; another site cannot post the form', async () => {
      const alice = new Browser(app.url);
      await signIn(alice, 'alice', orgA);
      const before = await pending();

      // The attacker's page (a link, a top-level navigation, an <img>): every kind of not-same-origin request.
      for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'none' }, { referer: 'https://evil.example/' }, {}] as Array<Record<string, string>>) {
        const r = await alice.get(`/login?org=${orgB.org}`, headers);
        assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.status} ${r.location}`);
        assert.equal(r.location, null);
        assert.ok(!r.setCookies.some((c) => c.startsWith('trackgate.login=')), 'no binding cookie');
        assert.match(textOf(r.text), new RegExp(`Continue to sign in to ${orgB.org}`));
        // Alice is told whose session the button would end.
        assert.match(textOf(r.text), /You are signed in as \S+ of alpha-/);
        assert.match(r.headers.get('cache-control') ?? '', /no-store/);
      }
      assert.equal(await pending(), before, 'no login attempt stored');

      // The attacker's auto-submitted form: no form token (their page cannot read it), or a made-up one.
      const forged = await alice.post('/login', { org: orgB.org, return_to: '/settings' }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
      assert.equal(forged.status, 403);
      assert.match(forged.text, /<code>csrf_failed<\/code>/);
      assert.ok(!forged.setCookies.some((c) => c.startsWith('trackgate.login=')));
      const guessed = await alice.post('/login', { org: orgB.org, return_to: '/settings', form_token: 'x'.repeat(32) });
      assert.equal(guessed.status, 403);
      assert.equal(await pending(), before);
      assert.equal((await me(alice)).body.email, `alice@${orgA}.test`, 'still alice');

      // Even a same-origin link (say, in a page of the proxied tracking UI) asks while someone is signed in.
      const sameOrigin = await alice.get(`/login?org=${orgB.org}`, SAME);
      assert.equal(sameOrigin.status, 200);
      assert.match(textOf(sameOrigin.text), /You are signed in as/);

      // Alice herself presses Continue: then, and only then, the login starts and replaces her session.
      const fields = hiddenFields(sameOrigin.text);
      assert.ok(fields.form_token);
      const go = await alice.post('/login', fields, SAME);
      assert.equal(go.status, 303, go.text);
      assert.ok(go.setCookies.some((c) => c.startsWith('trackgate.login=')));
      assert.equal((await answer(alice, go.location!, 'alice2', orgB.org)).status, 303);
      assert.equal((await me(alice)).body.email, `alice2@${orgB.org}.test`);
    });

    test('the same-origin flows still work: a start from trackgate\'s pages, the email form, the Continue page', async () => {
      // A link on trackgate's pages (Sec-Fetch-Site, or an older browser's Referer).
      await signIn(new Browser(app.url), 'sam', orgB.org);
      const old = new Browser(app.url);
      const byReferer = await old.get(`/login?org=${orgB.org}`, { referer: `${app.url}/login` });
      assert.equal(byReferer.status, 303);

      // The sign-in page's email form posts with the page's form token.
      const emma = new Browser(app.url);
      const page = await emma.get('/login?return_to=/teams/x');
      assert.equal(page.status, 200);
      assert.match(page.text, /<form method="post" action="\/login">/);
      const fields = hiddenFields(page.text);
      assert.equal(fields.return_to, '/teams/x');
      const go = await emma.post('/login', { ...fields, email: `emma@${orgB.org}.test` }, SAME);
      assert.equal(go.status, 303, go.text);
      const done = await answer(emma, go.location!, 'emma', orgB.org);
      assert.equal(done.status, 303);
      assert.equal(done.location, '/teams/x');

      // A bookmark / a link from mail: the Continue page, then signed in.
      const bob = new Browser(app.url);
      const ask = await bob.get(`/login?org=${orgB.org}&return_to=/settings`, { 'sec-fetch-site': 'none' });
      assert.equal(ask.status, 200);
      assert.doesNotMatch(textOf(ask.text), /You are signed in/);
      const cont = await bob.post('/login', hiddenFields(ask.text), SAME);
      assert.equal(cont.status, 303, cont.text);
      assert.equal((await answer(bob, cont.location!, 'bob', orgB.org)).status, 303);
      assert.equal((await me(bob)).body.email, `bob@${orgB.org}.test`);
    });

    test('one browser keeps at most 5 pending login attempts: the oldest are dropped', async () => {
      const before = await pending();
      const b = new Browser(app.url);
      const urls: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await b.get(`/login?org=${orgB.org}`, SAME);
        assert.equal(r.status, 303);
        urls.push(r.location!);
      }
      assert.equal((await pending()) - before, 5);
      const oldest = await answer(b, urls[0]!, 'cap', orgB.org);
      assert.equal(oldest.status, 400);
      assert.match(oldest.text, /<code>state_unknown<\/code>/);
      assert.equal((await answer(b, urls[7]!, 'cap', orgB.org)).status, 303);
    });

    test('no state: the IdP\'s (or anyone\'s) error text is not shown on trackgate\'s page', async () => {
      const lure = 'Your session expired. Re-enter your API key at https://evil.example';
      const r = await new Browser(app.url).get(`/login/callback?error=access_denied&error_description=${encodeURIComponent(lure)}`);
      assert.equal(r.status, 400);
      assert.doesNotMatch(r.text, /evil\.example|session expired/i);
      assert.match(textOf(r.text), /the sign-in did not complete \(the identity provider answered "access_denied"\); start again/);
      assert.match(r.text, /<code>login_incomplete<\/code>/);
      // An error code that is not a registered one is not named either.
      const odd = await new Browser(app.url).get(`/login/callback?error=${encodeURIComponent('Call_+1-555-0100_now')}`);
      assert.equal(odd.status, 400);
      assert.doesNotMatch(odd.text, /555/);
      // Nor an organization that is not one, on the sign-in page.
      const org = await new Browser(app.url).get(`/login?org=${encodeURIComponent(lure)}`);
      assert.equal(org.status, 404);
      assert.doesNotMatch(org.text, /evil\.example|session expired/i);
    });

    test('with its own state, a visitor writes at most one clean short line into the audit log', async () => {
      const b = new Browser(app.url);
      const start = await b.get(`/login?org=${orgB.org}`, SAME);
      assert.equal(start.status, 303);
      const state = new URL(start.location!).searchParams.get('state')!;
      const description = `Call\u202e us\r\nnow https://evil.example/${'A'.repeat(1500)}`;
      const r = await b.post('/login/callback', { state, error: 'access_denied', error_description: description });
      assert.equal(r.status, 400);
      assert.match(r.text, /<code>idp_error<\/code>/);
      assert.doesNotMatch(r.text, /<a href="https:\/\/evil/);
      assert.doesNotMatch(r.text, /A{201}/);
      assert.doesNotMatch(r.text, /\u202e/);
      const audit = await app.request('GET', `/gateway/v1/orgs/${orgB.org}/audit?action=sso.login_failed`, { key: orgB.adminKey });
      assert.equal(audit.status, 200, audit.text);
      const event = audit.body.events.find((e: any) => e.request_id === r.headers.get('x-request-id') || String(e.details.reason).includes('evil.example'));
      assert.ok(event, JSON.stringify(audit.body.events).slice(0, 500));
      const reason = String(event.details.reason);
      assert.ok(reason.length <= 500, `reason is ${reason.length} characters`);
      // eslint-disable-next-line no-control-regex -- control characters are what this looks for
      assert.doesNotMatch(reason, /[\u0000-\u001f\u007f\u202e]/);
      assert.doesNotMatch(reason, /A{201}/);
    });
  });
}

for (const dialect of dialects()) {
  describe(`SSO login starts are limited per address (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    before(async () => {
      app = await startTestApp(dialect, { loginStartLimit: 6, loginStartWindowSeconds: 600 });
      org = (await ssoOrg(app, `limited-${dialect}-${randomBytes(2).toString('hex')}`)).org;
    });
    after(() => app.close());

    test('a script without cookies gets 429 with Retry-After after the limit; nothing more is stored', async () => {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<Browser['get']>> | null = null;
      for (let i = 0; i < 30; i++) {
        last = await new Browser(app.url).get(`/login?org=${org}`, SAME);
        statuses.push(last.status);
      }
      assert.deepEqual(statuses.slice(0, 6), [303, 303, 303, 303, 303, 303]);
      assert.ok(statuses.slice(6).every((s) => s === 429), statuses.join(','));
      assert.ok(Number(last!.headers.get('retry-after')) > 0);
      assert.match(last!.text, /<code>too_many_login_attempts<\/code>/);
      assert.ok(!last!.setCookies.some((c) => c.startsWith('trackgate.login=')));
      const rows = await sql<{ n: number | string }>`select count(*) as n from login_transactions`.execute(app.gw.core.database.db);
      assert.equal(Number(rows.rows[0]!.n), 6);
      // The Continue page stores nothing and is still shown.
      const page = await new Browser(app.url).get(`/login?org=${org}`);
      assert.equal(page.status, 200);
    });
  });
}

describe('Redis keys follow TRACKGATE_REDIS_KEY_PREFIX', { skip: REDIS_URL ? false : 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set' }, () => {
  let a: TestApp;
  let b: TestApp;
  let redis: Redis;
  let org: string;
  const prefixA = `tg-a-${randomBytes(3).toString('hex')}:`;
  const prefixB = `tg-b-${randomBytes(3).toString('hex')}:`;
  before(async () => {
    // Two deployments on one Redis; the second on the same database and secret key, so that only the prefix keeps them apart.
    a = await startTestApp('sqlite', { redisUrl: REDIS_URL, redisKeyPrefix: prefixA });
    b = await startTestApp('sqlite', { redisUrl: REDIS_URL, redisKeyPrefix: prefixB }, { shareWith: a });
    redis = new Redis(REDIS_URL!);
    org = (await ssoOrg(a, `prefixed-${randomBytes(2).toString('hex')}`)).org;
  });
  after(async () => {
    await redis.quit();
    await b.close();
    await a.close();
  });

  test('sessions and login attempts live under each deployment\'s prefix, and one deployment does not see the other\'s', async () => {
    const browser = new Browser(a.url);
    const start = await browser.get(`/login?org=${org}`, SAME);
    assert.equal(start.status, 303);
    assert.equal((await redis.keys(`${prefixA}login-tx:*`)).length, 1);

    // A's login attempt delivered to B (same browser cookies, same database): B does not know it.
    const onB = new Browser(b.url);
    for (const [k, v] of browser.jar) onB.jar.set(k, v);
    for (const [k, v] of browser.paths) onB.paths.set(k, v);
    const u = new URL(start.location!);
    const token = await jose.mint(u.searchParams.get('nonce')!, { claims: { sub: 'pfx-sub', email: `pfx@${org}.test`, email_verified: true } });
    const crossed = await onB.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
    assert.equal(crossed.status, 400, crossed.text.slice(0, 300));
    assert.match(crossed.text, /<code>state_unknown<\/code>/);

    const done = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
    assert.equal(done.status, 303, done.text.slice(0, 300));
    const sid = decodeURIComponent(browser.jar.get('trackgate.sid')!).slice(2).split('.')[0]!;
    assert.equal(await redis.exists(`${prefixA}sess:${sid}`), 1);
    // Nor under the default prefix "trackgate:" (where SSO once wrote whatever the setting said).
    assert.equal(await redis.exists(`trackgate:sess:${sid}`), 0);
    assert.equal(await redis.exists(`${prefixB}sess:${sid}`), 0);
    assert.equal((await me(browser)).status, 200);

    // A's session cookie on B: no session there.
    const cookieOnB = new Browser(b.url);
    cookieOnB.jar.set('trackgate.sid', browser.jar.get('trackgate.sid')!);
    assert.equal((await me(cookieOnB)).status, 401);
  });
});
