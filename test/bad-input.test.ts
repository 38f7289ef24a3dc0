import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { freePort, rawRequest } from './support/net.ts';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { signIn } from './support/web.ts';
import { Browser } from './support/idp/browser.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';

for (const dialect of dialects()) {
  describe(`bad input (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    const expect4xx = async (method: string, path: string, opts: { body?: unknown; rawBody?: string; headers?: Record<string, string> }, status: number, pattern: RegExp) => {
      const r = await app.request(method, path, { key: adminKey, ...opts });
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.match(r.body.error.message, pattern, r.body.error.message);
      assert.ok(r.body.error.code);
      assert.ok(r.body.error.request_id);
      return r;
    };

    test('malformed JSON', async () => {
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { rawBody: '{"name": ', headers: { 'content-type': 'application/json' } }, 400, /malformed JSON/);
    });

    test('wrong types, missing and unknown fields, over-long strings, bad roles', async () => {
      // Every validation error lists its problems field by field, in the one documented field (error.problems).
      const typed = await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 42 } }, 400, /name/);
      assert.equal(typed.body.error.code, 'validation_failed');
      assert.deepEqual(typed.body.error.problems.map((p: { field: string; code: string }) => [p.field, p.code]), [['name', 'invalid_type']]);
      assert.equal(typeof typed.body.error.problems[0].message, 'string');
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: {} }, 400, /name/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'ok-team', admin: true } }, 400, /unknown field "admin"/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'x'.repeat(65) } }, 400, /at most 64/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'Has Spaces' } }, 400, /lowercase/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'x'.repeat(101) } }, 400, /name: must be at most 100/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'k', expires_in_days: 'soon' } }, 400, /expires_in_days/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'k', expires_in_days: -1 } }, 400, /expires_in_days/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'not-an-email', username: 'someone' } }, 400, /email/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'a@b.example', username: 'someone', role: 'owner' } }, 400, /role: must be one of admin, member, viewer/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: 'UPPER', name: 'x', plan: 'standard' } }, 400, /slug/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: 'fine-slug', name: 'x', plan: 'gold' } }, 400, /plan: must be standard or enterprise/);
      await expect4xx('PATCH', `/gateway/v1/orgs/${org}/users/${org}-admin`, { body: {} }, 400, /nothing to change/);
      await expect4xx('POST', `/gateway/v1/keys/00000000-0000-0000-0000-000000000000/rotate`, { body: { grace_seconds: 1.5 } }, 400, /grace_seconds/);
      await expect4xx('GET', `/gateway/v1/orgs/${org}/audit?limit=abc`, {}, 400, /limit/);
      await expect4xx('GET', `/gateway/v1/orgs/${org}/audit?evil=1`, {}, 400, /unknown field "evil"/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { rawBody: '[1,2]', headers: { 'content-type': 'application/json' } }, 400, /body/);
    });

    test('duplicates answer 409 and nothing is half-written', async () => {
      const u = await app.request('POST', `/gateway/v1/orgs/${org}/users`, { key: adminKey, body: { email: 'dup@example.com', username: `dup-${dialect}`, role: 'member' } });
      assert.equal(u.status, 201, u.text);
      // Same username, new email: no user with the new email may appear.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'fresh@example.com', username: `dup-${dialect}` } }, 409, /already taken/);
      // Same email, new username: the username must stay free.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'dup@example.com', username: `fresh-${dialect}` } }, 409, /email "dup@example.com" already exists/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'DUP@example.com', username: `fresh2-${dialect}` } }, 409, /already exists/);
      const users = (await app.request('GET', `/gateway/v1/orgs/${org}/users`, { key: adminKey })).body.users;
      assert.ok(!users.some((x: any) => x.email === 'fresh@example.com'));
      assert.ok(!users.some((x: any) => x.username === `fresh-${dialect}`));
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: `fresh-${dialect}` } })).status, 201, 'the name was not left claimed');
      // A team may not take a username, and the other way round: they share one namespace.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: `dup-${dialect}` } }, 409, /already taken/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: org, name: 'again', plan: 'standard' } }, 409, /already exists/);
      // The audit log shows only what happened.
      const audit = (await app.request('GET', `/gateway/v1/orgs/${org}/audit`, { key: adminKey })).body.events;
      assert.equal(audit.filter((e: any) => e.action === 'user.create').length, 1);
    });

    test('a user or team of another organization', async () => {
      const other = await app.bootstrap({ org: `other-${dialect}` });
      const otherTeam = `other-team-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/other-${dialect}/teams`, { key: other.adminKey, body: { name: otherTeam } })).status, 201);
      const myTeam = `my-team-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: myTeam } })).status, 201);
      // A user of the other organization cannot be added to my team…
      const r = await app.request('PUT', `/gateway/v1/teams/${myTeam}/members/${other.admin}`, { key: adminKey, body: { role: 'member' } });
      assert.equal(r.status, 404);
      assert.match(r.body.error.message, /user/);
    });

    test('unknown paths and methods', async () => {
      const r = await app.request('GET', '/gateway/v1/nope', { key: adminKey });
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'not_found');
    });

    test('oversized body is refused, the process keeps serving', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(200_000) });
      const r = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, rawBody: big, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 413);
      assert.equal((await fetch(app.url + '/healthz')).status, 200);
    });

    test('garbage on the wire does not crash the process', async () => {
      assert.match(await rawRequest(app.url, 'NOT HTTP AT ALL\r\n\r\n'), /400/);
      assert.match(await rawRequest(app.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /431/);
      assert.equal((await fetch(app.url + '/healthz')).status, 200);
    });
  });
}

// Client errors that libraries raise (a body that does not decompress, a path whose percent-encoding
// is not UTF-8, body-parser's typed errors) answered 500: each is a 4xx naming the problem, on every
// plane, and the process keeps serving after each.
for (const dialect of dialects()) {
  describe(`malformed encodings are client errors (${dialect})`, () => {
    let app: TestApp;
    let upstream: StubUpstream;
    let jose: JoseIdp;
    let org: string;
    let adminKey: string;
    before(async () => {
      upstream = await startUpstream();
      jose = await startJoseIdp({ clientId: 'nul-spa' });
      const port = await freePort();
      app = await startApp(dialect, { upstreamUrl: upstream.url, port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true });
      ({ org, adminKey } = await app.bootstrap());
    });
    after(async () => {
      await app.close();
      await Promise.all([upstream.close(), jose.close()]);
    });

    const alive = async (what: string) => assert.equal((await fetch(app.url + '/healthz')).status, 200, `still serving after ${what}`);
    const post = (path: string, body: Buffer, headers: Record<string, string>) =>
      fetch(app.url + path, { method: 'POST', headers: { authorization: basic(adminKey), ...headers }, body: new Uint8Array(body) });

    test('a body that does not decompress as its Content-Encoding says: 400 malformed_body, on every plane', async () => {
      const json = Buffer.from(JSON.stringify({ name: 'zipped-team' }));
      const bodies: Array<[string, string, Buffer]> = [
        ['gzip', 'garbage', Buffer.from('this is not gzip at all')],
        ['gzip', 'truncated', gzipSync(json).subarray(0, 12)],
        ['deflate', 'garbage', Buffer.from('this is not deflate at all')],
        ['deflate', 'truncated', deflateSync(json).subarray(0, 6)],
        ['br', 'garbage', Buffer.from('this is not brotli at all')],
        ['br', 'truncated', brotliCompressSync(json).subarray(0, 5)],
        ['GZIP', 'garbage (upper case)', Buffer.from('\x1f\x8b garbage')],
      ];
      const paths: Array<[string, string]> = [
        [`/gateway/v1/orgs/${org}/teams`, 'application/json'],
        ['/oidc/token', 'application/x-www-form-urlencoded'],
        ['/login/callback', 'application/x-www-form-urlencoded'],
        ['/logout', 'application/x-www-form-urlencoded'],
        ['/settings/keys', 'application/x-www-form-urlencoded'],
      ];
      for (const [encoding, label, body] of bodies) {
        for (const [path, type] of paths) {
          const r = await post(path, body, { 'content-type': type, 'content-encoding': encoding });
          const text = await r.text();
          assert.equal(r.status, 400, `${encoding} ${label} → POST ${path}: ${r.status} ${text}`);
          if (path.startsWith('/oidc/')) {
            // The token endpoint answers in RFC 6749's shape, whatever the error.
            const o = JSON.parse(text) as { error: string; error_description: string };
            assert.equal(o.error, 'invalid_request', text);
            assert.match(o.error_description, /does not decompress as its Content-Encoding says/);
            continue;
          }
          const e = JSON.parse(text).error;
          assert.equal(e.code, 'malformed_body', text);
          assert.match(e.message, /does not decompress as its Content-Encoding says/);
          assert.ok(e.request_id);
        }
        await alive(`${encoding} ${label}`);
      }
      // A body that does decompress is read as usual.
      const ok = await post(`/gateway/v1/orgs/${org}/teams`, gzipSync(json), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      assert.equal(ok.status, 201, await ok.text());
    });

    test("body-parser's typed errors keep their 4xx and say what is wrong", async () => {
      const cases: Array<[string, Record<string, string>, Buffer, number, string, RegExp]> = [
        [`/gateway/v1/orgs/${org}/teams`, { 'content-type': 'application/json', 'content-encoding': 'x-custom' }, Buffer.from('{}'), 415, 'unsupported_encoding', /Content-Encoding "x-custom"/],
        [`/gateway/v1/orgs/${org}/teams`, { 'content-type': 'application/json; charset=klingon' }, Buffer.from('{}'), 415, 'unsupported_encoding', /charset "klingon"/],
        // The token endpoint answers its form's problems 400 invalid_request (RFC 6749 §5.2), too many parameters included.
        ['/oidc/token', { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from(Array.from({ length: 60 }, (_, i) => `p${i}=1`).join('&')), 400, 'payload_too_large', /too many parameters/],
        [`/gateway/v1/orgs/${org}/teams`, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(Buffer.alloc(200_000, 0x20)), 413, 'payload_too_large', /too large/],
      ];
      for (const [path, headers, body, status, code, message] of cases) {
        const r = await post(path, body, headers);
        const text = await r.text();
        assert.equal(r.status, status, `POST ${path} ${JSON.stringify(headers)}: ${text}`);
        if (path.startsWith('/oidc/')) {
          const o = JSON.parse(text) as { error: string; error_description: string };
          assert.equal(o.error, 'invalid_request', text);
          assert.match(o.error_description, message);
          await alive(`${code} on ${path}`);
          continue;
        }
        const e = JSON.parse(text).error;
        assert.equal(e.code, code, text);
        assert.match(e.message, message);
        await alive(`${code} on ${path}`);
      }
    });

    test('bad percent-encoding in a path (%E0%A4%A): 400 malformed_path on trackgate\'s own paths, passed through by the proxy', async () => {
      const bad = '%E0%A4%A';
      // Management API: JSON.
      for (const path of [`/gateway/v1/teams/${bad}`, `/gateway/v1/orgs/${bad}/users`, `/gateway/v1/keys/${bad}/rotate`, `/static/web/${bad}`, `/login/link/${bad}`]) {
        const method = path.endsWith('/rotate') ? 'POST' : 'GET';
        const r = await app.request(method, path, { key: adminKey, ...(method === 'POST' ? { body: {} } : {}) });
        assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
        assert.equal(r.body.error.code, 'malformed_path', r.text);
        assert.match(r.body.error.message, /malformed percent-encoding/);
        await alive(path);
      }
      // A page, signed in: the page renderer shows the 400.
      const browser = await signIn(app, `admin@${org}.example`);
      const page = await browser.get(`/teams/${bad}`);
      assert.equal(page.status, 400, page.text.slice(0, 300));
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(page.text, /<code>malformed_path<\/code>/);
      assert.match(page.text, /malformed percent-encoding/);
      // Signed out, the page sends the browser to log in (the path is not decoded for that).
      const out = await app.request('GET', `/settings/${bad}`, { headers: { accept: 'text/html' } });
      assert.equal(out.status, 302);
      // Forward auth does not decode the path: a valid key is allowed, none is 401 (with a login Location for a browser).
      assert.equal((await app.request('GET', `/auth/verify/${bad}`, { key: adminKey })).status, 200);
      const anon = await app.request('GET', `/auth/verify/${bad}`, { headers: { accept: 'text/html' } });
      assert.equal(anon.status, 401);
      assert.equal((await app.request('GET', `/auth/verify?x=${bad}`, { key: adminKey })).status, 200);
      // The proxy hands the raw path to the upstream unchanged.
      upstream.reset();
      const proxied = await app.request('GET', `/runs/${bad}?q=${bad}`, { key: adminKey });
      assert.equal(proxied.status, 200, proxied.text);
      assert.equal(upstream.requests.at(-1)!.url, `/runs/${bad}?q=${bad}`);
      assert.equal((await app.request('GET', `/runs/${bad}`, { headers: { accept: 'text/html' } })).status, 302);
      await alive('bad percent-encoding');
    });

    test('a NUL character (U+0000) in a path, query or body is a 400 on both databases (PostgreSQL answered 500)', async () => {
      const cases: Array<[string, string, unknown, RegExp]> = [
        ['GET', '/gateway/v1/teams/%00', undefined, /the path contains a NUL/],
        ['GET', `/gateway/v1/orgs/${org}/users/a%00b`, undefined, /the path contains a NUL/],
        ['DELETE', '/gateway/v1/keys/%00', undefined, /the path contains a NUL/],
        ['GET', `/gateway/v1/orgs/${org}/audit?action=%00`, undefined, /the query string contains a NUL/],
        ['POST', '/gateway/v1/me/keys', { name: 'a\u0000b' }, /the request body contains a NUL/],
        ['POST', `/gateway/v1/orgs/${org}/users`, { email: 'nul@b.example', username: 'nul-user', display_name: 'x\u0000y' }, /the request body contains a NUL/],
        ['POST', '/gateway/v1/orgs', { slug: 'nul-org', name: 'x', plan: 'standard', ['k\u0000']: 1 }, /the request body contains a NUL/],
      ];
      for (const [method, path, body, message] of cases) {
        const r = await app.request(method, path, { key: adminKey, ...(body === undefined ? {} : { body }) });
        assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
        assert.match(r.body.error.message, message);
        await alive(`NUL in ${method} ${path}`);
      }
      const login = await app.request('GET', '/login?org=%00', { headers: { accept: 'text/html' } });
      assert.equal(login.status, 400, login.text.slice(0, 200));
      // %2500 is a literal "%00", not a NUL.
      assert.equal((await app.request('GET', '/gateway/v1/teams/%2500', { key: adminKey })).status, 404);
    });

    test('a NUL character in an ID token claim refuses the login with a 400 page naming the claim (PostgreSQL answered 500)', async () => {
      const r0 = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: jose.issuer, client_id: 'nul-spa', domains: [`${org}.test`], jit: true } });
      assert.equal(r0.status, 201, r0.text);
      for (const [claim, claims] of [
        ['sub', { sub: 'a\u0000b', email: `x@${org}.test` }],
        ['name', { sub: 'nul-name', email: `y@${org}.test`, name: 'N\u0000M' }],
        ['groups', { sub: 'nul-groups', email: `z@${org}.test`, groups: ['g\u0000'] }],
      ] as const) {
        const browser = new Browser(app.url);
        const start = await browser.get(`/login?org=${org}`, { 'sec-fetch-site': 'same-origin' });
        assert.equal(start.status, 303, start.text.slice(0, 300));
        const u = new URL(start.location!);
        const token = await jose.mint(u.searchParams.get('nonce')!, { claims: { ...claims, email_verified: true } });
        const r = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
        assert.equal(r.status, 400, `${claim}: ${r.status} ${r.text.slice(0, 300)}`);
        assert.match(r.text, /<code>id_token_claim_invalid<\/code>/);
        assert.match(r.text, new RegExp(`&quot;${claim}&quot; claim contains a NUL character`));
        assert.ok(!r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session');
        await alive(`NUL in the ${claim} claim`);
      }
    });
  });
}
