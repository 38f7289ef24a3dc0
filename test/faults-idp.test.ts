/**
 * Issue 15's fault table, the IdP rows: an OpenID provider down (refused), slow (longer than
 * TRACKGATE_SSO_HTTP_TIMEOUT_MS), restarted and partitioned from the gateway, under a steady load of
 * /auth/verify on a real `trackgate serve`. trackgate talks to an IdP in three places: discovery when a
 * login starts (only when the stored document is older than TRACKGATE_SSO_DISCOVERY_MAX_AGE_SECONDS:
 * 0 here, so every start asks), the token endpoint (code flow) and the JWKS (cached) when the answer
 * comes back. Each row checks what a login answers and how fast, that an existing session and every key
 * keep working, that /readyz does not notice, and that logins work again by themselves after
 * (docs/OPERATIONS.md).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Browser } from './support/idp/browser.ts';
import { GatewayProcess } from './support/faults/gateway-process.ts';
import { FaultIdp } from './support/faults/idp.ts';
import { LoadDriver } from './support/faults/load.ts';
import { freePort } from './support/faults/ports.ts';
import { bootstrapAdmin, createKeys, revokeKey, sqliteDeployment } from './support/faults/seed.ts';
import { FaultProxy } from './support/faults/tcp-proxy.ts';
import { basic, sleep } from './support/app.ts';

const SSO_TIMEOUT_MS = 1000;
/** A login answers within the IdP timeout and this (a loaded test machine). */
const MARGIN_MS = 4000;

describe('faults: an IdP (real trackgate process)', { timeout: 240_000 }, () => {
  let dir: string;
  let idp: FaultIdp;
  let relay: FaultProxy;
  let gw: GatewayProcess;
  let adminKey: string;
  let codeOrg: string;
  let implicitOrg: string;
  const good: string[] = [];
  const revoked: Array<{ key: string; revokedAt: number }> = [];
  let n = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-fault-idp-'));
    idp = await FaultIdp.start();
    relay = await FaultProxy.start({ port: idp.port });
    idp.origin = `http://127.0.0.1:${relay.port}`;
    const port = await freePort();
    const env = sqliteDeployment(dir, {
      TRACKGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
      // Development mode: the IdP is on 127.0.0.1 over http.
      TRACKGATE_ALLOW_HTTP_ISSUERS: 'true',
      TRACKGATE_SSO_HTTP_TIMEOUT_MS: String(SSO_TIMEOUT_MS),
      TRACKGATE_SSO_DISCOVERY_MAX_AGE_SECONDS: '0',
      TRACKGATE_LOGIN_START_LIMIT: '100000',
    });
    gw = await GatewayProcess.start(env, { port });
    ({ org: codeOrg, adminKey } = await bootstrapAdmin(env));
    const keys = await createKeys(gw.url, adminKey, 5);
    gw.recordKeys([adminKey, ...keys.map((k) => k.key)]);
    good.push(adminKey, ...keys.slice(0, 3).map((k) => k.key));
    for (const k of keys.slice(3)) revoked.push({ key: k.key, revokedAt: await revokeKey(gw.url, adminKey, k.id) });
    implicitOrg = `${codeOrg}-imp`;
    const created = await api('POST', '/gateway/v1/orgs', { slug: implicitOrg, name: implicitOrg, plan: 'enterprise' });
    assert.equal(created.status, 201, created.text);
    for (const [org, flow] of [[codeOrg, 'code'], [implicitOrg, 'implicit']] as const) {
      const r = await api('POST', `/gateway/v1/orgs/${org}/sso`, { issuer: idp.issuer, client_id: idp.clientId, flow, response_mode: 'form_post', domains: [`${org}.test`], jit: true });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(async () => {
    await gw?.stop();
    await relay?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function api(method: string, path: string, body?: unknown) {
    const r = await fetch(gw.url + path, { method, headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, text: await r.text() };
  }

  /** GET /login for an organization: the answer, how long it took, and the IdP URL it redirects to. */
  async function startLogin(browser: Browser, org: string) {
    const t0 = Date.now();
    const r = await browser.request('GET', `/login?org=${org}`, { headers: { 'sec-fetch-site': 'same-origin' } });
    return { ...r, ms: Date.now() - t0, idp: r.location ? new URL(r.location) : null };
  }

  /** The IdP's answer for a started login delivered to the callback, as the browser would: the code flow's redirect or the implicit form post. */
  async function finishLogin(browser: Browser, started: URL, flow: 'code' | 'implicit', org: string) {
    const state = started.searchParams.get('state')!;
    const claims = { nonce: started.searchParams.get('nonce')!, sub: `person-${n}`, email: `person-${n++}@${org}.test` };
    const t0 = Date.now();
    const r =
      flow === 'code'
        ? await browser.get(`/login/callback?code=${idp.code(claims)}&state=${encodeURIComponent(state)}`)
        : await browser.post('/login/callback', { id_token: await idp.idToken(claims), state });
    return { ...r, ms: Date.now() - t0 };
  }

  async function login(flow: 'code' | 'implicit') {
    const org = flow === 'code' ? codeOrg : implicitOrg;
    const browser = new Browser(gw.url);
    const started = await startLogin(browser, org);
    assert.equal(started.status, 303, started.text);
    const done = await finishLogin(browser, started.idp!, flow, org);
    return { browser, started, done };
  }

  const loggedIn = (r: { status: number; location: string | null; setCookies: string[] }) => r.status === 303 && r.location === '/settings' && r.setCookies.some((c) => c.startsWith('trackgate.sid='));

  /**
   * Under load, with a session made before the fault: breaks the IdP, checks what logins answer during
   * the fault (`during` gets the code-flow callback's answer), mends it, and checks that logins work again.
   */
  async function row(fault: () => void, heal: () => void, tokenEndpointCode: string) {
    const session = await login('code');
    assert.ok(loggedIn(session.done), `a login before the fault works: ${session.done.status} ${session.done.text.slice(0, 300)}`);
    const load = new LoadDriver({ targets: [{ name: 'a', url: gw.url }], good, revoked, paths: ['verify'], durationMs: 60_000, concurrency: 4 }).start();
    try {
      await sleep(500);
      load.mark('fault');
      fault();
      // A login starting now: discovery cannot be refreshed; the stored document is used, the browser goes to the IdP.
      const browser = new Browser(gw.url);
      const started = await startLogin(browser, codeOrg);
      assert.equal(started.status, 303, `a login starts with the stored discovery document: ${started.status} ${started.text.slice(0, 300)}`);
      assert.equal(started.idp!.origin + started.idp!.pathname, `${idp.issuer}/authorize`);
      assert.ok(started.ms < SSO_TIMEOUT_MS + MARGIN_MS, `the start waited at most the IdP timeout (${started.ms} ms)`);
      // Its answer comes back (the browser reached the IdP, the gateway does not): the code cannot be exchanged.
      const failed = await finishLogin(browser, started.idp!, 'code', codeOrg);
      assert.equal(failed.status, 400, failed.text.slice(0, 500));
      assert.match(failed.text, /Sign-in failed/);
      assert.match(failed.text, new RegExp(`<code>${tokenEndpointCode}</code>`), failed.text.slice(0, 800));
      assert.ok(!failed.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session');
      assert.ok(failed.ms < SSO_TIMEOUT_MS + MARGIN_MS, `the callback waited at most the IdP timeout (${failed.ms} ms)`);
      // The implicit flow needs only the JWKS, already cached: its login completes.
      const implicit = await login('implicit');
      assert.ok(loggedIn(implicit.done), `an implicit login completes with the cached JWKS: ${implicit.done.status} ${implicit.done.text.slice(0, 300)}`);
      // The session made before, the management API and /readyz do not notice.
      const me = await session.browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
      assert.equal(me.status, 200, me.text);
      assert.equal((await api('GET', '/gateway/v1/me')).status, 200);
      const ready = await fetch(`${gw.url}/readyz`);
      assert.equal(ready.status, 200);
      const readyBody = (await ready.json()) as { status: string; checks: Record<string, string> };
      assert.equal(readyBody.status, 'ok', JSON.stringify(readyBody));
      assert.ok(!Object.keys(readyBody.checks).some((c) => /idp|sso/i.test(c)), JSON.stringify(readyBody));
      load.mark('heal');
      heal();
      await sleep(300);
      // Logins work again by themselves: no stale pooled connection to the IdP fails the first one.
      const again = await login('code');
      assert.ok(loggedIn(again.done), `a login after the fault works: ${again.done.status} ${again.done.text.slice(0, 300)}`);
      await sleep(300);
    } finally {
      await load.stop();
    }
    load.assertInvariants(0);
    load.assertOnlyWithin('an /auth/verify answer other than 200/401', (s) => s.status !== (s.revokedAt === null ? 200 : 401), []);
    load.assertAllAnsweredWithin(MARGIN_MS);
    return load;
  }

  test('IdP down (connections refused): a login starts on the stored discovery document; the code exchange fails with a 400 sign-in page (token_endpoint_unreachable) at once; sessions, keys and /readyz unaffected', async (t) => {
    const load = await row(() => relay.set('refuse'), () => relay.set('pass'), 'token_endpoint_unreachable');
    t.diagnostic(JSON.stringify(load.summary()));
  });

  test('IdP slow (each chunk held 2 s, longer than TRACKGATE_SSO_HTTP_TIMEOUT_MS): login start and callback wait at most the timeout; 400 sign-in page (token_endpoint_timeout)', async (t) => {
    const load = await row(() => relay.set('delay', 2000), () => relay.set('pass'), 'token_endpoint_timeout');
    t.diagnostic(JSON.stringify(load.summary()));
  });

  test('IdP restarted (its connections cut, refused meanwhile, then back): the same answers as down, and the next login after it works', async (t) => {
    // A restart as the gateway sees it: every open connection reset, new ones refused until it is back.
    const load = await row(() => relay.set('refuse'), () => relay.set('pass'), 'token_endpoint_unreachable');
    t.diagnostic(JSON.stringify(load.summary()));
  });

  test('IdP partitioned (packets dropped both ways): login start and callback wait at most the timeout; 400 sign-in page (token_endpoint_timeout); logins work again once it heals', async (t) => {
    const load = await row(() => relay.set('blackhole'), () => relay.heal(), 'token_endpoint_timeout');
    t.diagnostic(JSON.stringify(load.summary()));
  });
});
