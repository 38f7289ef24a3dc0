import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { cspDirectives } from './support/net.ts';

for (const dialect of dialects()) {
  describe(`authentication and operations (${dialect})`, () => {
    let app: TestApp;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect, { authFailureLimit: 5, authFailureWindowSeconds: 60 });
      ({ adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    test('malformed Authorization headers: 401 with a message and WWW-Authenticate', async () => {
      const cases: Array<[string, RegExp]> = [
        ['Digest abc', /unsupported Authorization scheme/],
        ['Basic', /malformed Authorization header/],
        ['Basic !!!notbase64', /not valid base64/],
        ['Basic ' + Buffer.from('no-colon').toString('base64'), /expected "api:<key>"/],
        ['Bearer opaque-token', /invalid bearer token/],
      ];
      for (const [header, pattern] of cases) {
        const r = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: header, 'x-forwarded-for': '10.9.9.9' } });
        const body = (await r.json()) as any;
        assert.equal(r.status, 401, header);
        assert.match(body.error.message, pattern);
        assert.ok(r.headers.get('www-authenticate'));
      }
      const none = await fetch(app.url + '/gateway/v1/me');
      assert.equal(none.status, 401);
      assert.match(((await none.json()) as any).error.message, /authentication required/);
    });

    test('many distinct failed keys from one address are rate limited (429), other addresses are not; a good key is still answered', async () => {
      const statuses: number[] = [];
      // Loopback is a trusted proxy, so X-Forwarded-For names the client. Each try a different key:
      // one key repeated counts once (test/auth-failures.test.ts).
      assert.equal((await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + adminKey, 'x-forwarded-for': '203.0.113.9' } })).status, 200, 'a key in use (so cached)');
      for (let i = 0; i < 7; i++) {
        statuses.push((await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + generateKey('user').key, 'x-forwarded-for': '203.0.113.7' } })).status);
      }
      assert.deepEqual(statuses.slice(0, 4), [401, 401, 401, 401]);
      assert.equal(statuses.at(-1), 429);
      const blocked = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + generateKey('user').key, 'x-forwarded-for': '203.0.113.7' } });
      assert.equal(blocked.status, 429, 'a blocked address has no more unknown keys looked up');
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
      const good = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + adminKey, 'x-forwarded-for': '203.0.113.7' } });
      assert.equal(good.status, 200, 'a key the gateway has verified is answered from a blocked address too');
      const elsewhere = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + generateKey('user').key, 'x-forwarded-for': '203.0.113.8' } });
      assert.equal(elsewhere.status, 401);
    });

    test('policy require_sso: a person\'s API key is refused in the browser, not in tools', async () => {
      const { org } = await app.bootstrap();
      const dev = await app.createUser({ org, username: `sso-only-${dialect}` });
      const orgRow = await app.gw.core.store.repos.orgs.findBySlug(org);
      // Set the policy directly: the API insists on an enabled SSO connection first (tested with the web pages).
      await app.gw.core.invalidator.transaction(app.gw.core.store, async (repos, invalidate) => {
        await repos.orgs.update(orgRow!.id, { require_sso: 1 });
        invalidate.all();
      });
      const call = (path: string, headers: Record<string, string>) => fetch(app.url + path, { headers: { authorization: 'Bearer ' + dev.key, 'x-forwarded-for': '192.0.2.44', ...headers } });
      for (const path of ['/gateway/v1/me', '/auth/verify']) {
        const html = await call(path, { accept: 'text/html,application/xhtml+xml' });
        assert.equal(html.status, 403, path);
        if (path.startsWith('/gateway')) assert.equal(((await html.json()) as any).error.code, 'sso_required');
        assert.equal((await call(path, { 'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'cors', accept: 'application/json' })).status, 403, path);
        // The tracking client and scripts (Node's fetch included) send neither.
        assert.equal((await call(path, { accept: '*/*' })).status, 200, path);
      }
      const op = await app.bootstrap();
      const opOrg = await app.gw.core.store.repos.orgs.findBySlug(op.org);
      await app.gw.core.invalidator.transaction(app.gw.core.store, async (repos, invalidate) => {
        await repos.orgs.update(opOrg!.id, { require_sso: 1 });
        invalidate.all();
      });
      const opCall = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + op.adminKey, accept: 'text/html' } });
      assert.equal(opCall.status, 200, 'the instance operator keeps the way in');
    });

    test('healthz, readyz, openapi.json', async () => {
      const health = await fetch(app.url + '/healthz');
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      assert.equal(health.headers.get('cache-control'), 'no-store');
      const head = await fetch(app.url + '/healthz', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      // A trusted proxy's request id (loopback is one by default) is kept on a lean path's 405 too, as on JWKS's.
      const post = await fetch(app.url + '/readyz', { method: 'POST', headers: { 'x-request-id': 'probe-405-1' } });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      assert.equal(post.headers.get('x-request-id'), 'probe-405-1');
      assert.deepEqual(((await post.json()) as any).error, { code: 'method_not_allowed', message: 'POST is not allowed here: use GET', request_id: 'probe-405-1' });
      const jwksPost = await fetch(app.url + '/.well-known/jwks.json', { method: 'DELETE', headers: { 'x-request-id': 'probe-405-2' } });
      assert.equal(jwksPost.status, 405);
      assert.equal(jwksPost.headers.get('allow'), 'GET, HEAD');
      assert.equal(jwksPost.headers.get('cache-control'), 'no-store');
      assert.equal(((await jwksPost.json()) as any).error.request_id, 'probe-405-2');
      const ready = await fetch(app.url + '/readyz');
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as any).checks.database, 'ok');
      const doc = (await (await fetch(app.url + '/gateway/v1/openapi.json')).json()) as any;
      assert.equal(doc.openapi, '3.1.0');
      for (const p of ['/gateway/v1/me', '/gateway/v1/me/keys', '/gateway/v1/keys/{id}/rotate', '/gateway/v1/orgs/{org}/users/{username}', '/gateway/v1/teams/{team}/members/{username}', '/gateway/v1/orgs/{org}/audit']) {
        assert.ok(doc.paths[p], `openapi documents ${p}`);
      }
      for (const p of ['/auth/verify', '/.well-known/jwks.json', '/login/callback', '/healthz']) assert.ok(doc.paths[p], `openapi documents ${p}`);
      for (const p of ['/gateway/v1/service-accounts/{id}/federated-credentials/{credentialId}', '/gateway/v1/secret-scanning/reports']) assert.ok(doc.paths[p], `openapi documents ${p}`);
      // The token endpoint: its form body and its RFC 6749 errors.
      const token = doc.paths['/oidc/token']?.post;
      assert.ok(token?.requestBody.content['application/x-www-form-urlencoded'].schema.properties.assertion, 'openapi documents /oidc/token with its form body');
      assert.equal(token.responses['400'].content['application/json'].schema.$ref, '#/components/schemas/OAuthError');
      assert.ok(doc.components.schemas.OAuthError.properties.error.enum.includes('invalid_grant'));
      assert.ok(doc.paths['/gateway/v1/me/keys'].post.requestBody.content['application/json'].schema.properties.name);
    });

    test('responses carry security headers and a strict CSP', async () => {
      const r = await fetch(app.url + '/gateway/v1/me', { headers: { authorization: 'Bearer ' + adminKey } });
      // The whole policy: a directive added, loosened or dropped fails here.
      assert.deepEqual(cspDirectives(r.headers.get('content-security-policy')), {
        'default-src': ["'none'"],
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'connect-src': ["'self'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'base-uri': ["'none'"],
        'object-src': ["'none'"],
      });
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.ok(r.headers.get('x-request-id'));
    });

    test('a 500 answers a generic body; the details go to the log (hot path; the Express side is in management-isolate.test.ts)', async () => {
      // A key the hot path has not seen: verifying it loads its owner, whose teams lookup fails.
      const fresh = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'fails-to-load' } });
      assert.equal(fresh.status, 201);
      const repo = app.gw.core.store.repos.teams;
      const original = repo.teamsOfUser.bind(repo);
      repo.teamsOfUser = async () => {
        throw new Error('database exploded: SECRET-INTERNAL-DETAIL');
      };
      try {
        const res = await fetch(app.url + '/auth/verify', { headers: { authorization: basic(fresh.body.key) } });
        const text = await res.text();
        assert.equal(res.status, 500);
        const body = JSON.parse(text);
        assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'request_id']);
        assert.equal(body.error.message, 'internal error');
        assert.ok(!text.includes('SECRET-INTERNAL-DETAIL'));
      } finally {
        repo.teamsOfUser = original;
      }
      const { readFileSync } = await import('node:fs');
      assert.match(readFileSync(app.logFile, 'utf8'), /SECRET-INTERNAL-DETAIL/);
    });

    test('request log lines carry the whole path, mount prefix included, and no query', async () => {
      const res = await fetch(app.url + '/gateway/v1/me?probe=log-path', { headers: { authorization: 'Bearer ' + adminKey } });
      assert.equal(res.status, 200);
      const { readFileSync } = await import('node:fs');
      const line = readFileSync(app.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => JSON.parse(l) as { path: string; request_id: string })
        .find((l) => l.request_id === res.headers.get('x-request-id'));
      assert.ok(line, 'the request has its log line');
      assert.equal(line.path, '/gateway/v1/me');
    });
  });
}

describe('metrics', () => {
  test('GET /metrics serves Prometheus text to loopback', async () => {
    const { startApp } = await import('./support/app.ts');
    const app = await startApp('sqlite');
    try {
      const { adminKey } = await app.bootstrap();
      await app.request('GET', '/gateway/v1/me', { key: adminKey });
      // The hot path's key cache (the gauge); /gateway/v1/me is counted by the management worker.
      await fetch(app.url + '/auth/verify', { headers: { authorization: basic(adminKey) } });
      const r = await fetch(app.url + '/metrics');
      assert.equal(r.status, 200);
      const text = await r.text();
      assert.match(text, /trackgate_http_requests_total\{method="GET",route="\/gateway\/v1\/me",status="200"\} 1/);
      assert.match(text, /trackgate_key_cache_entries [1-9]/);
      assert.match(text, /trackgate_process_resident_memory_bytes/);
    } finally {
      await app.close();
    }
  });
});
