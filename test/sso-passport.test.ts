/**
 * SSO sign-in through Passport (issue 19): each connection's own strategy, against the real oidc-provider
 * IdPs (Okta-like and Azure-AD-like). Two tabs finished in the other order; a planted session id replaced
 * at login (req.login regenerates) and dead in the store; the login page for a signed-in person; two
 * organizations on one multi-tenant issuer never sharing a strategy; and, on two instances of one
 * PostgreSQL + Redis, a connection edited on A followed by B's next login, and a logout on A ending the
 * session on B at once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sign } from 'cookie-signature';
import type { SessionData } from 'express-session';
import { sql } from 'kysely';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import type { IdpAnswer } from './support/idp/drive.ts';
import { startAzureLikeIdp, startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { AzureLikeIdp, OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { freePort } from './support/net.ts';
import { Strategy as PassportStrategy } from 'passport-strategy';
import { createAuthenticator } from '../src/sso/passport/authenticator.ts';
import { ConnectionStrategies } from '../src/sso/passport/connection-strategies.ts';

const TENANT_A = 'aaaaaaaa-2222-4222-8222-222222222222';
const TENANT_B = 'bbbbbbbb-3333-4333-8333-333333333333';
const SCOPES = ['openid', 'email', 'profile'];
const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;

let okta: OktaLikeIdp;
let azure: AzureLikeIdp;
before(async () => {
  okta = await startOktaLikeIdp();
  azure = await startAzureLikeIdp({ tenants: [TENANT_A, TENANT_B] });
});
after(async () => {
  await Promise.all([okta.close(), azure.close()]);
});

/** An app whose public URL is its own address (the callback URI an IdP is told). */
async function startSsoApp(dialect: 'sqlite' | 'postgres', overrides: Record<string, unknown> = {}, shareWith?: TestApp): Promise<TestApp> {
  const port = await freePort();
  return startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, ssoJwksCooldownSeconds: 0, ...overrides }, shareWith ? { shareWith } : {});
}

const callbackOf = (app: TestApp) => `${app.url}/login/callback`;

async function createConnection(app: TestApp, key: string, org: string, body: Record<string, unknown>): Promise<string> {
  const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key, body });
  assert.equal(r.status, 201, r.text);
  return r.body.id as string;
}

async function createOrg(app: TestApp, key: string, slug: string): Promise<void> {
  const r = await app.request('POST', '/gateway/v1/orgs', { key, body: { slug, name: slug, plan: 'enterprise' } });
  assert.equal(r.status, 201, r.text);
}

/** GET /login?… from trackgate's own pages → the IdP URL (the browser now holds the binding cookie). */
async function startLogin(browser: Browser, query: string): Promise<string> {
  const r = await browser.get(`/login?${query}`, { 'sec-fetch-site': 'same-origin' });
  assert.equal(r.status, 303, r.text.slice(0, 500));
  assert.ok(browser.jar.has('trackgate.login'), 'the binding cookie is set');
  return r.location!;
}

/** The IdP's answer delivered to trackgate's callback as the browser would (form_post here). */
async function deliver(browser: Browser, answer: IdpAnswer) {
  assert.equal(answer.kind, 'form_post', 'the connections of this file use form_post');
  if (answer.kind !== 'form_post') throw new Error('unreachable');
  return browser.request('POST', new URL(answer.action).pathname, { form: answer.fields });
}

async function me(browser: Browser): Promise<{ status: number; body: any }> {
  const r = await browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
  return { status: r.status, body: r.status === 200 ? JSON.parse(r.text) : null };
}

function assertSignedIn(r: { status: number; location: string | null; text: string }, returnTo: string) {
  assert.equal(r.status, 303, r.text.slice(0, 500));
  assert.equal(r.location, returnTo);
}

function assertRefused(r: { status: number; text: string; setCookies: string[] }, code: string) {
  assert.ok(r.status >= 400 && r.status < 500, `expected a refusal, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.match(r.text, new RegExp(`<code>${code}</code>`));
  assert.ok(!r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session cookie');
}

/** A browser holding only a session cookie (another tab, another instance, an attacker's replay). */
function withCookie(app: TestApp, sid: string): Browser {
  const b = new Browser(app.url);
  b.jar.set('trackgate.sid', sid);
  return b;
}

describe('sign-in through the connection strategies (one instance, SQLite)', () => {
  let app: TestApp;
  let adminKey: string;
  let org: string;

  before(async () => {
    app = await startSsoApp('sqlite');
    await okta.setClients([{ client_id: 'pp-okta', kind: 'implicit', redirect_uris: [callbackOf(app)] }]);
    await azure.setClients([
      { client_id: 'pp-az-one', kind: 'implicit', redirect_uris: [callbackOf(app)] },
      { client_id: 'pp-az-two', kind: 'implicit', redirect_uris: [callbackOf(app)] },
    ]);
    const b = await app.bootstrap({ org: 'pp-okta' });
    adminKey = b.adminKey;
    org = b.org;
    await createConnection(app, adminKey, org, { issuer: okta.issuer, client_id: 'pp-okta', response_mode: 'form_post', scopes: SCOPES, domains: ['pp-okta.test'], jit: true });
  });
  after(() => app.close());

  test('two tabs: two logins started in one browser and finished in the other order both succeed; the last one wins the session', async () => {
    okta.addUser({ sub: 'pp-tab-ann', email: 'ann@pp-okta.test' });
    okta.addUser({ sub: 'pp-tab-bob', email: 'bob@pp-okta.test' });
    const browser = new Browser(app.url);
    const tab1 = await startLogin(browser, `org=${org}&return_to=/one`);
    const tab2 = await startLogin(browser, `org=${org}&return_to=/two`);
    // Each login is its own transaction: two states, two nonces.
    assert.notEqual(new URL(tab1).searchParams.get('state'), new URL(tab2).searchParams.get('state'));
    const answer1 = await driveIdpLogin(tab1, 'pp-tab-ann');
    const answer2 = await driveIdpLogin(tab2, 'pp-tab-bob');

    assertSignedIn(await deliver(browser, answer2), '/two');
    const first = browser.jar.get('trackgate.sid')!;
    assert.match((await me(browser)).body.email, /^bob@/);
    assertSignedIn(await deliver(browser, answer1), '/one');
    const last = browser.jar.get('trackgate.sid')!;
    assert.notEqual(last, first, 'the second sign-in got a new session id');
    assert.match((await me(browser)).body.email, /^ann@/, 'the last login finished is the session');
    assert.equal((await me(withCookie(app, first))).status, 401, "the first tab's session was replaced, not kept beside");
  });

  test('session fixation: a planted session id (a pre-login session with a flash) is not the id after login, and is dead in the store', async () => {
    okta.addUser({ sub: 'pp-fix', email: 'fix@pp-okta.test' });
    // A pre-login session the attacker knows: stored as the app would store it, its cookie signed with the app's key.
    const store = app.gw.core.sessionStore;
    const sid = `planted-${randomBytes(12).toString('hex')}`;
    const planted = { cookie: { originalMaxAge: null, httpOnly: true, path: '/', sameSite: 'lax' }, flash: 'sealed-notice' } as unknown as SessionData;
    await new Promise<void>((resolve, reject) => store.set(sid, planted, (err) => (err ? reject(err as Error) : resolve())));
    const secret = app.gw.core.secretBox.derive('session-cookie').toString('base64url');
    const cookie = encodeURIComponent(`s:${sign(sid, secret)}`);
    const read = (id: string) => new Promise<SessionData | null>((resolve, reject) => store.get(id, (err, d) => (err ? reject(err as Error) : resolve(d ?? null))));
    assert.ok(await read(sid), 'the planted session exists before the login');

    const browser = withCookie(app, cookie);
    assertSignedIn(await deliver(browser, await driveIdpLogin(await startLogin(browser, `org=${org}`), 'pp-fix')), '/settings');
    const after = browser.jar.get('trackgate.sid')!;
    assert.notEqual(after, cookie, 'the session id changed at login');
    assert.ok(!decodeURIComponent(after).includes(sid));
    assert.equal(await read(sid), null, 'the planted session is gone from the store');
    assert.equal((await me(withCookie(app, cookie))).status, 401, "the attacker's cookie signs nobody in");
    assert.equal((await me(browser)).status, 200);
  });

  test('the login page: a signed-in person is sent to return_to (prompt=login shows the form); nobody signed in gets the form', async () => {
    okta.addUser({ sub: 'pp-page', email: 'page@pp-okta.test' });
    const anonymous = await new Browser(app.url).get('/login?return_to=/teams/x');
    assert.equal(anonymous.status, 200);
    assert.match(anonymous.text, /name="email"/);
    const browser = new Browser(app.url);
    assertSignedIn(await deliver(browser, await driveIdpLogin(await startLogin(browser, `org=${org}`), 'pp-page')), '/settings');
    const signedIn = await browser.get('/login?return_to=/teams/x');
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, '/teams/x');
    const unsafe = await browser.get('/login?return_to=//evil.example/x');
    assert.equal(unsafe.location, '/settings', 'return_to stays a same-origin path');
    const prompt = await browser.get('/login?prompt=login');
    assert.equal(prompt.status, 200);
    assert.match(prompt.text, /name="email"/);
    // A link to start SSO while signed in asks first (login CSRF), naming whom it signs out.
    const cont = await browser.get(`/login?org=${org}`, { 'sec-fetch-site': 'same-origin' });
    assert.equal(cont.status, 200);
    assert.match(cont.text, /You are signed in as/);
  });

  test('two organizations on one multi-tenant issuer (same host) each sign in through their own strategy', async () => {
    await createOrg(app, adminKey, 'pp-az-one');
    await createOrg(app, adminKey, 'pp-az-two');
    const common = { issuer: azure.organizationsIssuer, response_mode: 'form_post', scopes: SCOPES, group_roles: [], jit: true };
    const one = await createConnection(app, adminKey, 'pp-az-one', { ...common, client_id: 'pp-az-one', allowed_tenant_ids: [TENANT_A], domains: ['pp-az-one.test'] });
    const two = await createConnection(app, adminKey, 'pp-az-two', { ...common, client_id: 'pp-az-two', allowed_tenant_ids: [TENANT_B], domains: ['pp-az-two.test'] });
    // The same settings version on both (saved in the same millisecond): strategies kept by issuer host, or by
    // version, would hand one organization's login to the other's strategy.
    const now = new Date().toISOString();
    await sql`update sso_connections set updated_at = ${now}, discovered_at = ${now} where id in (${one}, ${two})`.execute(app.gw.core.database.db);
    const ann = azure.addUser(TENANT_A, { oid: '0000000a-0000-4000-8000-0000000000a1', email: 'ann@pp-az-one.test' });
    const bob = azure.addUser(TENANT_B, { oid: '0000000b-0000-4000-8000-0000000000b1', email: 'bob@pp-az-two.test' });

    // Both logins pending at once, in two browsers: each strategy keeps its own client ID and tenant list.
    const annBrowser = new Browser(app.url);
    const bobBrowser = new Browser(app.url);
    const urlOne = await startLogin(annBrowser, 'org=pp-az-one');
    const urlTwo = await startLogin(bobBrowser, 'org=pp-az-two');
    assert.equal(new URL(urlOne).searchParams.get('client_id'), 'pp-az-one');
    assert.equal(new URL(urlTwo).searchParams.get('client_id'), 'pp-az-two');
    azure.setActiveTenant(TENANT_A);
    const answerOne = await driveIdpLogin(urlOne, ann.sub);
    azure.setActiveTenant(TENANT_B);
    const answerTwo = await driveIdpLogin(urlTwo, bob.sub);
    assertSignedIn(await deliver(bobBrowser, answerTwo), '/settings');
    assertSignedIn(await deliver(annBrowser, answerOne), '/settings');
    assert.deepEqual((await me(annBrowser)).body.orgs.map((o: { slug: string }) => o.slug), ['pp-az-one']);
    assert.deepEqual((await me(bobBrowser)).body.orgs.map((o: { slug: string }) => o.slug), ['pp-az-two']);

    // Crossed: a tenant-B person through org one's connection is refused by org one's allow-list, and the other way round.
    const crossed = new Browser(app.url);
    azure.setActiveTenant(TENANT_B);
    assertRefused(await deliver(crossed, await driveIdpLogin(await startLogin(crossed, 'org=pp-az-one'), bob.sub)), 'tenant_not_allowed');
    const crossed2 = new Browser(app.url);
    azure.setActiveTenant(TENANT_A);
    assertRefused(await deliver(crossed2, await driveIdpLogin(await startLogin(crossed2, 'org=pp-az-two'), ann.sub)), 'tenant_not_allowed');
  });
});

const pgRedisSkip = !dialects().includes('postgres') ? 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set' : !REDIS_URL ? 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set' : false;

describe('two instances on one PostgreSQL + Redis', { skip: pgRedisSkip }, () => {
  let a: TestApp;
  let b: TestApp;
  let adminKey: string;
  let org: string;
  let connectionId: string;

  before(async () => {
    const shared = { redisUrl: REDIS_URL, redisKeyPrefix: `tgpp-${randomBytes(4).toString('hex')}:` };
    a = await startSsoApp('postgres', shared);
    b = await startSsoApp('postgres', shared, a);
    const uris = [callbackOf(a), callbackOf(b)];
    await okta.setClients([
      { client_id: 'pp2-one', kind: 'implicit', redirect_uris: uris },
      { client_id: 'pp2-two', kind: 'implicit', redirect_uris: uris },
    ]);
    const boot = await a.bootstrap({ org: 'pp-multi' });
    adminKey = boot.adminKey;
    b.keys.add(adminKey);
    org = boot.org;
    connectionId = await createConnection(a, adminKey, org, { issuer: okta.issuer, client_id: 'pp2-one', response_mode: 'form_post', scopes: SCOPES, domains: ['pp-multi.test'], jit: true });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  test("a connection edited on A: B's next login uses the new settings (a login pending with the old client ID fails, a new one succeeds)", async () => {
    okta.addUser({ sub: 'pp2-edit', email: 'edit@pp-multi.test' });
    // B signs someone in: B now holds the connection's strategy of that version.
    const first = new Browser(b.url);
    const url1 = await startLogin(first, `org=${org}`);
    assert.equal(new URL(url1).searchParams.get('client_id'), 'pp2-one');
    assertSignedIn(await deliver(first, await driveIdpLogin(url1, 'pp2-edit')), '/settings');
    // A login started on B before the edit, its answer (a token for pp2-one) held by the browser.
    const pending = new Browser(b.url);
    const held = await driveIdpLogin(await startLogin(pending, `org=${org}`), 'pp2-edit');

    const patch = await a.request('PATCH', `/gateway/v1/orgs/${org}/sso/${connectionId}`, { key: adminKey, body: { client_id: 'pp2-two' } });
    assert.equal(patch.status, 200, patch.text);

    // B finishes the held login with the connection as it is now: the token is for the old client ID.
    assertRefused(await deliver(pending, held), 'audience_mismatch');
    // B's next login asks for the new client ID, and succeeds.
    const next = new Browser(b.url);
    const url2 = await startLogin(next, `org=${org}`);
    assert.equal(new URL(url2).searchParams.get('client_id'), 'pp2-two', "B's strategy follows the edit made on A");
    assertSignedIn(await deliver(next, await driveIdpLogin(url2, 'pp2-edit')), '/settings');
    assert.equal((await me(next)).status, 200);
  });

  test('a session made on A works on B; POST /logout on A ends it on B at once', async () => {
    okta.addUser({ sub: 'pp2-out', email: 'out@pp-multi.test' });
    const onA = new Browser(a.url);
    assertSignedIn(await deliver(onA, await driveIdpLogin(await startLogin(onA, `org=${org}`), 'pp2-out')), '/settings');
    const sid = onA.jar.get('trackgate.sid')!;
    const onB = withCookie(b, sid);
    assert.equal((await me(onB)).status, 200, 'the session is shared');
    const settings = await onB.get('/settings');
    assert.equal(settings.status, 200, 'a page on B too');

    const session = await onA.request('GET', '/gateway/v1/session', { headers: { accept: 'application/json' } });
    const { csrf_token } = JSON.parse(session.text) as { csrf_token: string };
    assert.equal((await onA.post('/logout', {})).status, 403, 'logout needs the CSRF token');
    assert.equal((await me(onB)).status, 200);
    const out = await onA.post('/logout', { csrf_token });
    assert.equal(out.status, 303);
    // At once: no wait, no retry.
    assert.equal((await me(onB)).status, 401, 'the API on B refuses the ended session');
    const page = await onB.get('/settings');
    assert.equal(page.status, 302, 'a page on B sends the browser to the sign-in');
    assert.match(page.location ?? '', /^\/login\?return_to=/);
  });
});

describe('ConnectionStrategies: bounded, versioned', () => {
  // Connections deleted on another instance are never announced to this one: the bound keeps their strategies
  // from piling up. A strategy holds nothing a pending login needs, so one dropped is made again when used.
  test('beyond the bound the least recently used strategy is dropped; a new version is made again; drop() unregisters', () => {
    const authenticator = createAuthenticator();
    const strategies = new ConnectionStrategies(authenticator, 2);
    const made: string[] = [];
    strategies.registerKind('oidc', (c) => {
      made.push(`${c.id}@${c.version}`);
      return new PassportStrategy();
    });
    const registered = (id: string) => (authenticator as unknown as { _strategy(name: string): unknown })._strategy(ConnectionStrategies.nameOf(id)) !== undefined;
    const use = (id: string, version = 'v1') => strategies.use({ id, kind: 'oidc', version });

    assert.equal(use('a'), 'sso:a');
    use('b');
    use('a'); // a is now the most recently used
    use('c'); // beyond the bound of 2: b goes
    assert.equal(strategies.size, 2);
    assert.deepEqual(made, ['a@v1', 'b@v1', 'c@v1']);
    assert.ok(!registered('b') && registered('a') && registered('c'), 'b was dropped from the Authenticator too');
    use('b');
    assert.deepEqual(made.slice(3), ['b@v1'], 'b made again at its next use');
    assert.ok(!registered('a'), 'a, now the least recently used, was dropped');

    use('c', 'v2');
    assert.deepEqual(made.slice(4), ['c@v2'], 'a new settings version gets a new strategy');
    use('c', 'v2');
    assert.equal(made.length, 5, 'the same version is not made again');
    strategies.drop('c');
    assert.ok(!registered('c'));
    assert.equal(strategies.size, 1);
    assert.throws(() => strategies.use({ id: 'd', kind: 'saml', version: 'v1' }), /no sign-in strategy for "saml"/);
  });
});
