/**
 * Open redirect through return_to (issue 13): a table of hostile inputs
 * against safeReturnTo, then end to end: every Location that trackgate builds
 * from a client's input (/login with a session, forward auth, the proxy's
 * login redirect, the end of an SSO login) resolves to the gateway's own
 * origin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { freePort, rawRequest } from './support/net.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { decodeHtml, signIn } from './support/web.ts';
import { loginPath, safeReturnTo } from '../src/http/return-to.ts';

const HOSTILE: string[] = [
  // dot segments that collapse into a protocol-relative path
  '/.//evil.com',
  '/..//evil.com',
  '/a/..//evil.com',
  '/a/b/../..//evil.com',
  '/./\\evil.com',
  '/.\\/evil.com',
  '/..\\evil.com',
  // encoded dots, slashes and backslashes
  '/%2e//evil.com',
  '/%2E//evil.com',
  '/%2e%2e//evil.com',
  '/.%2e//evil.com',
  '/a/%2e%2e//evil.com',
  '/%2e/%2fevil.com',
  '/%2F%2Fevil.com',
  '/%2f/evil.com',
  '/%5c%5cevil.com',
  '/%5C/evil.com',
  '/.%2f/evil.com',
  '/%252e%252e//evil.com',
  // tabs, newlines and other controls (a browser drops tab and newline from a URL)
  '/\t/evil.com',
  '/\n/evil.com',
  '/\r\n/evil.com',
  '/.\t//evil.com',
  '/%09/evil.com',
  '/%0d%0aSet-Cookie:%20x=y',
  '/\r\nSet-Cookie: x=y',
  '/\u0000/evil.com',
  '/\u007f/evil.com',
  // backslashes
  '/\\evil.com',
  '\\\\evil.com',
  '/\\/evil.com',
  '\\/evil.com',
  // protocol-relative and schemes
  '//evil.com',
  '///evil.com',
  '////evil.com',
  'https://evil.com',
  'http:evil.com',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  ' /evil',
  ' //evil.com',
  '/ /evil.com',
  'evil.com',
  '',
  // unicode look-alikes of / and .
  '/／evil.com',
  '／／evil.com',
  '/／／evil.com',
  '/∕∕evil.com',
  '/⁄⁄evil.com',
  '/。/evil.com',
  '/．．//evil.com',
  '/\u2028//evil.com',
  '/\u200b//evil.com',
  '/\ufeff//evil.com',
  // very long
  '/' + 'a'.repeat(5000),
  '/' + '／'.repeat(1500),
];

const BASE = 'https://gw.example';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What a Location that trackgate sends must never be. */
function assertSafeLocation(loc: string, base: string, input: string): void {
  const what = `${JSON.stringify(input)} gave Location ${JSON.stringify(loc)}`;
  assert.ok(!loc.startsWith('//') && !loc.startsWith('/\\') && !loc.startsWith('\\'), `protocol-relative: ${what}`);
  assert.doesNotMatch(loc, /^[a-z][a-z0-9+.-]*:/i, `a scheme: ${what}`);
  assert.doesNotMatch(loc, CONTROL, `a control character: ${what}`);
  assert.equal(new URL(loc, base).origin, new URL(base).origin, `another origin: ${what}`);
}

describe('safeReturnTo', () => {
  test('a table of hostile inputs: nothing leaves the origin, and every result is a fixed point', () => {
    for (const input of HOSTILE) {
      const r = safeReturnTo(input, null);
      if (r === null) continue;
      assertSafeLocation(r, BASE, input);
      assert.equal(safeReturnTo(r, null), r, `not a fixed point: ${JSON.stringify(input)} → ${r}`);
      assert.ok(r.length <= 2000, 'bounded length');
    }
  });

  test('what collapses to another host is refused (the finding itself)', () => {
    for (const input of ['/.//evil.com', '/..//evil.com', '/a/..//evil.com', '/%2e%2e//evil.com', '/%2e//evil.com', '/./\\evil.com', '/\t/evil.com', '//evil.com']) {
      assert.equal(safeReturnTo(input, '/settings'), '/settings', JSON.stringify(input));
    }
  });

  test('honest paths survive, normalized as a browser would', () => {
    assert.equal(safeReturnTo('/teams/x?tab=1#keys', null), '/teams/x?tab=1#keys');
    assert.equal(safeReturnTo('/', null), '/');
    assert.equal(safeReturnTo('/a/../b', null), '/b');
    assert.equal(safeReturnTo('/search?q=a b', null), '/search?q=a%20b');
    assert.equal(safeReturnTo('/runs/é', null), '/runs/%C3%A9');
    assert.equal(safeReturnTo('/x?next=/y', null), '/x?next=/y');
  });

  test('loginPath builds /login?return_to= only from a safe path', () => {
    assert.equal(loginPath('/.//evil.com'), '/login');
    assert.equal(loginPath(undefined), '/login');
    assert.equal(loginPath('/teams/x?a=1'), `/login?return_to=${encodeURIComponent('/teams/x?a=1')}`);
  });
});

/** A raw GET (request-targets fetch would normalize first), answering status and Location. */
async function rawGet(url: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; location: string | null }> {
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${new URL(url).host}`, 'Accept: text/html', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const text = await rawRequest(url, lines.join('\r\n') + '\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const loc = /\r\nlocation: ([^\r\n]*)/i.exec(head)?.[1] ?? null;
  return { status, location: loc };
}

let jose: JoseIdp;
let upstream: StubUpstream;
before(async () => {
  jose = await startJoseIdp({ clientId: 'rt-spa' });
  upstream = await startUpstream();
});
after(async () => {
  await Promise.all([jose.close(), upstream.close()]);
});

for (const dialect of dialects()) {
  describe(`return_to end to end (${dialect})`, () => {
    let app: TestApp;
    let base: string;
    let org: string;
    let adminEmail: string;
    let session: Browser;
    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await startApp(dialect, { port, publicUrl: base, allowHttpIssuers: true, upstreamUrl: upstream.url });
      org = `rt-${dialect}`;
      adminEmail = `admin@${org}.example`;
      const b = await app.bootstrap({ org, email: adminEmail });
      const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: b.adminKey, body: { issuer: jose.issuer, client_id: 'rt-spa', domains: [`${org}.test`], jit: true } });
      assert.equal(r.status, 201, r.text);
      session = await signIn(app, adminEmail);
    });
    after(() => app.close());

    /** /login with a signed-in session answers 303 to return_to: it must stay on this origin. */
    async function loginRedirect(input: string, path = `/login?return_to=${encodeURIComponent(input)}`): Promise<void> {
      const r = await session.get(path);
      if (r.status === 303) assertSafeLocation(r.location ?? '', base, input);
      else {
        // The login page itself (200), or a refusal of the input (400: a NUL character): no Location at all.
        assert.ok(r.status === 200 || r.status === 400, `GET ${path}: ${r.status}`);
        assert.equal(r.location, null);
      }
    }

    test('GET /login?return_to=… with a session never redirects off the origin', async () => {
      const worst = await session.get(`/login?return_to=${encodeURIComponent('/.//evil.com')}`);
      assert.equal(worst.status, 303);
      assert.equal(worst.location, '/settings');
      for (const input of HOSTILE) await loginRedirect(input);
      const honest = await session.get(`/login?return_to=${encodeURIComponent('/teams/x?tab=1')}`);
      assert.equal(honest.location, '/teams/x?tab=1');
    });

    test('forward auth (/auth/verify): Location, then /login, stay on the origin', async () => {
      const check = async (input: string, r: { status: number; location: string | null }) => {
        if (r.location === null) return; // the request line itself was refused (400)
        assertSafeLocation(r.location, base, input);
        await loginRedirect(input, r.location);
      };
      for (const input of HOSTILE) {
        // The path-prefix form (Envoy): the original path follows /auth/verify, sent as is.
        if (input.startsWith('/')) await check(input, await rawGet(app.url, '/auth/verify' + input));
        // A trusted proxy's X-Forwarded-Uri / X-Original-Uri (header values cannot carry CR or LF).
        if (!/[\r\n]/.test(input)) {
          await check(input, await rawGet(app.url, '/auth/verify', { 'X-Forwarded-Uri': input }));
          await check(input, await rawGet(app.url, '/auth/verify', { 'X-Original-Uri': input, 'X-Forwarded-Prefix': '/' }));
        }
      }
      const worst = await rawGet(app.url, '/auth/verify/.//evil.com');
      assert.equal(worst.status, 401);
      assert.equal(worst.location, '/login');
      assert.equal((await fetch(app.url + '/healthz')).status, 200);
    });

    test("the proxy's login redirect for a browser stays on the origin", async () => {
      for (const input of HOSTILE) {
        // eslint-disable-next-line no-control-regex -- control characters are what this looks for
        if (!input.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(input) || /[^\x00-\x7f]/.test(input)) continue;
        const r = await rawGet(app.url, input);
        if (r.location === null) continue;
        assertSafeLocation(r.location, base, input);
        await loginRedirect(input, r.location);
      }
      // The proxy may refuse a dot segment outright (400); if it sends the browser to log in, then without return_to.
      const worst = await rawGet(app.url, '/.//evil.com');
      assert.ok(worst.status === 400 || (worst.status === 302 && worst.location === '/login'), `${worst.status} ${worst.location}`);
    });

    test('after an SSO login, the redirect stays on the origin', async () => {
      for (const input of ['/.//evil.com', '/..//evil.com', '/a/..//evil.com', '/%2e%2e//evil.com', '/./\\evil.com', '/%2F%2Fevil.com', '/／／evil.com', '/teams/x?tab=1']) {
        const browser = new Browser(app.url);
        let start = await browser.get(`/login?org=${org}&return_to=${encodeURIComponent(input)}`);
        if (start.status === 200) {
          // A login started by a link shows a page with a button first: press it (POST /login with its hidden fields, return_to among them).
          const fields = Object.fromEntries([...start.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, decodeHtml(m[2]!)]));
          assert.ok('return_to' in fields, start.text.slice(0, 500));
          start = await browser.post('/login', fields, { 'sec-fetch-site': 'same-origin', origin: base });
        }
        assert.equal(start.status, 303, `${input}: ${start.status} ${start.text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
        const u = new URL(start.location!);
        const token = await jose.mint(u.searchParams.get('nonce')!, { claims: { sub: `rt-user-${dialect}`, email: `rt.user@${org}.test`, email_verified: true } });
        const r = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
        assert.equal(r.status, 303, `${input}: ${r.status} ${r.text.slice(0, 300)}`);
        assert.ok(r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'signed in');
        assertSafeLocation(r.location!, base, input);
        if (input === '/teams/x?tab=1') assert.equal(r.location, input);
        if (input === '/.//evil.com') assert.equal(r.location, '/settings');
      }
    });
  });
}
