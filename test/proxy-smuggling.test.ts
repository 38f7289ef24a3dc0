/**
 * Smuggling through the gateway, as an attacker tries it over HTTP: identity headers spelled
 * with "_" or "." and client-made address/URL headers on the way to the upstream, dot segments
 * that climb out of the upstream's base path, a cross-site state change on /auth/verify when the
 * ingress does not say the method, and a request id of the client's choosing in the audit log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { request } from 'undici';
import { rawRequest } from './support/net.ts';
import { signIn } from './support/web.ts';

/** No peer of this test is a trusted proxy: every request comes from an untrusted client. */
const UNTRUSTED = { trustedProxies: ['192.0.2.1'] };

for (const dialect of dialects()) {
  describe(`smuggling through the gateway (${dialect})`, () => {
    let upstream: StubUpstream;
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let alice: { key: string; username: string };

    before(async () => {
      upstream = await startUpstream();
      app = await startApp(dialect, { upstreamUrl: `${upstream.url}/api/v9`, upstreamTimeoutMs: 2000, ...UNTRUSTED });
      ({ org, adminKey } = await app.bootstrap());
      alice = await app.createUser({ org, username: `alice-${org}` });
    });
    after(async () => {
      await app.close();
      await upstream.close();
    });

    test('identity headers spelled with "_" or "." and client-made address or URL headers never reach the upstream', async () => {
      upstream.reset();
      const forged: Record<string, string> = {
        X_Trackgate_User: 'admin',
        'X-Trackgate_Org': 'orgb',
        x_trackgate_assertion: 'forged',
        X_WANDB_USERNAME: 'admin',
        'X.Trackgate.User': 'admin',
        'X.WANDB.USER.EMAIL': 'admin@orgb.example',
        'True-Client-IP': '10.0.0.1',
        'X-Client-IP': '10.0.0.1',
        'CF-Connecting-IP': '10.0.0.1',
        'X-Cluster-Client-IP': '10.0.0.1',
        'X-Original-URL': '/admin',
        'X-Rewrite-URL': '/admin',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-For': '10.0.0.1',
        'X-Forwarded-Server': 'evil.example',
      };
      const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { authorization: basic(alice.key), 'content-type': 'application/json', ...forged }, body: '{}' });
      assert.equal(r.status, 200, await r.text());
      const seen = upstream.requests[0]!;
      const names = seen.rawHeaders.filter((_, i) => i % 2 === 0);
      assert.deepEqual(names.filter((n) => /[_.]/.test(n)), [], 'no header name with "_" or "." upstream');
      for (const n of ['true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-forwarded-server']) assert.equal(seen.headers[n], undefined, n);
      assert.equal(seen.headers['x-trackgate-user'], alice.username);
      assert.equal(seen.headers['x-trackgate-org'], org);
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted peer says nothing about the client address');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.notEqual(seen.headers['x-forwarded-host'], 'evil.example');
      assert.ok(!JSON.stringify(seen.rawHeaders).includes('orgb'));
    });

    test('a path with a dot segment (raw, percent-encoded, between encoded slashes) is 400 malformed_path before authentication, and never reaches the upstream', async () => {
      upstream.reset();
      const hostile = [
        '/../admin/secret',
        '/graphql/../../../metrics',
        '/%2e%2e/%2e%2e/internal',
        '/%2E%2E/internal',
        '/.%2e/internal',
        '/..%2f..%2finternal',
        '/files/..%2F..%2Finternal',
        '/..%5c..%5cinternal',
        '/..\\..\\internal',
        '/files/x/..;/..;/internal',
        '/./graphql',
        '/files/%2e/x',
        '/..',
        '/files/..?x=1',
      ];
      for (const path of hostile) {
        for (const key of [alice.key, null]) {
          const auth = key ? `Authorization: ${basic(key)}\r\n` : '';
          const out = await rawRequest(app.url, `GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
          assert.match(out, /^HTTP\/1\.1 400 /, `${path}: ${out.slice(0, 200)}`);
          assert.match(out, /"code":"malformed_path"/, path);
        }
      }
      assert.equal(upstream.requests.length, 0, `the upstream saw ${upstream.requests.map((r) => r.url).join(', ')}`);
    });

    test('paths with dots, percent-encoding and encoded slashes that are not dot segments go through under the base path', async () => {
      upstream.reset();
      const fine = ['/files/e/p/r/model.v1.ckpt', '/files/e/p/r/.hidden', '/files/e/p/r/...', '/files/e/p/r/media%2Fimages%2Fx.png', '/files/e/p/r/a%20b..txt', '/graphql?next=../../x'];
      for (const path of fine) {
        const r = await fetch(`${app.url}${path}`, { headers: { authorization: basic(alice.key) } });
        assert.equal(r.status, 200, `${path}: ${await r.text()}`);
      }
      assert.deepEqual(upstream.requests.map((r) => r.url), fine.map((p) => `/api/v9${p}`));
    });

    test('/auth/verify refuses a header spelled to pass for an identity header', async () => {
      for (const name of ['X_Trackgate_User', 'x.trackgate.org', 'X_WANDB_USERNAME']) {
        const r = await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(alice.key), [name]: 'admin' } });
        assert.equal(r.status, 400, name);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'forged_identity_header');
      }
      const ok = await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(alice.key), 'X-Custom_Thing': '1' } });
      assert.equal(ok.status, 200, 'other names with "_" are the ingress\'s business');
    });

    test('/auth/verify with the session cookie and no method from the ingress: a cross-site request or a state-changing check request is refused', async () => {
      const browser = await signIn(app, `alice-${org}@${org}.example`);
      const origin = new URL(app.gw.core.config.publicUrl).origin;
      const evil = 'https://evil.example';
      const code = (t: string) => (JSON.parse(t) as { error: { code: string } }).error.code;

      const plain = await browser.get('/auth/verify');
      assert.equal(plain.status, 200, plain.text);
      // undici's request, not fetch: fetch adds its own Sec-Fetch-Mode (cors) to every request.
      const navigation = await request(`${app.url}/auth/verify`, { headers: { cookie: browser.cookieHeader(), accept: 'text/html', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
      assert.equal(navigation.statusCode, 200, await navigation.body.text());
      const crossFetch = await request(`${app.url}/auth/verify`, { headers: { cookie: browser.cookieHeader(), 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' } });
      assert.equal(crossFetch.statusCode, 403, await crossFetch.body.text());

      const crossOrigin = await browser.request('GET', '/auth/verify', { headers: { origin: evil } });
      assert.equal(crossOrigin.status, 403, crossOrigin.text);
      assert.equal(code(crossOrigin.text), 'csrf');
      const post = await browser.request('POST', '/auth/verify', { headers: { origin: evil } });
      assert.equal(post.status, 403, post.text);
      const postNoOrigin = await browser.request('POST', '/auth/verify');
      assert.equal(postNoOrigin.status, 403, postNoOrigin.text);
      // The peer is not a trusted proxy: its X-Original-Method is not believed, and cannot make a cross-site request pass.
      const saysGet = await browser.request('GET', '/auth/verify', { headers: { origin: evil, 'x-original-method': 'GET' } });
      assert.equal(saysGet.status, 403, saysGet.text);

      const sameOrigin = await browser.request('POST', '/auth/verify', { headers: { origin } });
      assert.equal(sameOrigin.status, 200, sameOrigin.text);
      const sameOriginGet = await browser.request('GET', '/auth/verify', { headers: { origin } });
      assert.equal(sameOriginGet.status, 200, sameOriginGet.text);
      // An API key is not a cookie: no CSRF question.
      const withKey = await fetch(`${app.url}/auth/verify`, { method: 'POST', headers: { authorization: basic(alice.key), origin: evil } });
      assert.equal(withKey.status, 200);
    });

    test('a client that is not a trusted proxy cannot choose the request id stored in audit events', async () => {
      const chosen = 'forged-request-id-0001';
      const r = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'rid' }, headers: { 'x-request-id': chosen } });
      assert.equal(r.status, 201, r.text);
      assert.notEqual(r.headers.get('x-request-id'), chosen);
      const events = (await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=20`, { key: adminKey })).body.events as Array<{ action: string; request_id: string | null }>;
      const created = events.find((e) => e.action === 'key.create');
      assert.ok(created?.request_id);
      assert.notEqual(created.request_id, chosen);
      assert.equal(created.request_id, r.headers.get('x-request-id'), 'the audit event carries the id the answer named');
      assert.ok(!events.some((e) => e.request_id === chosen));

      upstream.reset();
      const p = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { authorization: basic(alice.key), 'x-request-id': chosen }, body: '{}' });
      assert.equal(p.status, 200);
      assert.notEqual(upstream.requests[0]!.headers['x-request-id'], chosen);
      const v = await fetch(`${app.url}/auth/verify`, { headers: { 'x-request-id': chosen } });
      assert.equal(v.status, 401);
      assert.notEqual(((await v.json()) as { error: { request_id: string } }).error.request_id, chosen);
    });
  });
}

describe('request ids from a trusted proxy', () => {
  let app: TestApp;
  let adminKey: string;
  before(async () => {
    // Loopback (this test) is a trusted proxy by default.
    app = await startApp('sqlite');
    ({ adminKey } = await app.bootstrap());
  });
  after(() => app.close());

  test('a well-formed id is kept on every plane; a malformed one is replaced', async () => {
    const given = 'nginx-0123456789abcdef';
    const m = await app.request('GET', '/gateway/v1/me', { key: adminKey, headers: { 'x-request-id': given } });
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('x-request-id'), given);
    const v = await fetch(`${app.url}/auth/verify`, { headers: { 'x-request-id': given } });
    assert.equal(((await v.json()) as { error: { request_id: string } }).error.request_id, given);
    for (const bad of ['a'.repeat(129), 'has space', 'quote"d', '<script>']) {
      const r = await app.request('GET', '/gateway/v1/me', { key: adminKey, headers: { 'x-request-id': bad } });
      assert.equal(r.status, 200);
      const id = r.headers.get('x-request-id')!;
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
      const w = await fetch(`${app.url}/auth/verify`, { headers: { 'x-request-id': bad } });
      assert.notEqual(((await w.json()) as { error: { request_id: string } }).error.request_id, bad);
    }
  });
});
