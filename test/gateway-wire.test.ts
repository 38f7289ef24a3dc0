/**
 * The tracking client on the wire, through trackgate's own reverse proxy
 * (TRACKGATE_UPSTREAM_URL) to a stub tracking API that records what it got.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Client } from 'undici';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { rawRequest } from './support/net.ts';

/** The body `wandb login` sends to check a key. */
const VIEWER = JSON.stringify({ query: 'query Viewer{ viewer { id entity username email flags teams { edges { node { name } } } } }', variables: {} });

/** The headers the tracking client sends (its user agent, JSON, Basic api:<key>). */
function clientHeaders(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: basic(key), 'Content-Type': 'application/json', 'User-Agent': 'W&B Internal Client 0.19.8', ...extra };
}


for (const dialect of dialects()) {
  describe(`the tracking client through the gateway (${dialect})`, () => {
    let upstream: StubUpstream;
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let team: string;
    let alice: { key: string; username: string };
    let carol: { key: string; username: string };
    let sa: { id: string; username: string; key: { key: string; id: string } };

    before(async () => {
      upstream = await startUpstream();
      app = await startApp(dialect, { upstreamUrl: upstream.url, upstreamTimeoutMs: 1000 });
      ({ org, adminKey } = await app.bootstrap());
      team = `runs-${org}`;
      alice = await app.createUser({ org, username: `alice-${org}` });
      carol = await app.createUser({ org, username: `carol-${org}` });
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${alice.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
      const r = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name: 'retrain' } });
      assert.equal(r.status, 201, r.text);
      sa = r.body;
    });
    after(async () => {
      await app.close();
      await upstream.close();
    });

    const verifyAssertion = async (token: unknown) => {
      const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
      const { payload, protectedHeader } = await jwtVerify(String(token), jwks, { issuer: app.gw.core.config.publicUrl, audience: upstream.url, algorithms: ['ES256'] });
      assert.ok(protectedHeader.kid);
      assert.ok(payload.exp! - payload.iat! <= 60 && payload.exp! > Date.now() / 1000);
      return payload;
    };

    const noKeyUpstream = (key: string) => {
      for (const r of upstream.requests) {
        assert.ok(!JSON.stringify(r.rawHeaders).includes(key), 'the key never reaches the upstream');
        assert.ok(!(r.body?.toString() ?? '').includes(key));
        assert.equal(r.headers.authorization, undefined);
      }
    };

    test('POST /graphql Viewer with a personal key: identity headers and a valid assertion upstream, no key', async () => {
      upstream.reset();
      const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(alice.key), body: VIEWER });
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as { url: string }).url, '/graphql');
      const seen = upstream.requests[0]!;
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body?.toString(), VIEWER);
      assert.equal(seen.headers['user-agent'], 'W&B Internal Client 0.19.8');
      assert.equal(seen.headers['x-trackgate-user'], alice.username);
      assert.equal(seen.headers['x-trackgate-email'], `${alice.username}@${org}.example`);
      assert.equal(seen.headers['x-trackgate-org'], org);
      assert.equal(seen.headers['x-trackgate-teams'], team);
      assert.equal(seen.headers['x-trackgate-principal-type'], 'user');
      assert.equal(seen.headers['x-trackgate-attributed-user'], undefined);
      const claims = await verifyAssertion(seen.headers['x-trackgate-assertion']);
      assert.equal(claims.principal_type, 'user');
      assert.equal(claims.username, alice.username);
      assert.equal(claims.org, org);
      assert.deepEqual(claims.teams, [team]);
      assert.equal(claims.attributed_user, null);
      noKeyUpstream(alice.key);
    });

    test('a service-account run with and without X-WANDB-USERNAME', async () => {
      upstream.reset();
      const plain = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key), body: VIEWER });
      assert.equal(plain.status, 200);
      await plain.text();
      const attributed = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': alice.username }), body: VIEWER });
      assert.equal(attributed.status, 200);
      await attributed.text();
      const byEmail = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, { 'X-WANDB-USER-EMAIL': `${alice.username}@${org}.example` }), body: VIEWER });
      assert.equal(byEmail.status, 200);
      await byEmail.text();

      const [a, b, c] = upstream.requests;
      assert.equal(a!.headers['x-trackgate-principal-type'], 'service_account');
      assert.equal(a!.headers['x-trackgate-user'], sa.username);
      assert.equal(a!.headers['x-trackgate-teams'], team);
      assert.equal(a!.headers['x-trackgate-attributed-user'], undefined);
      const ca = await verifyAssertion(a!.headers['x-trackgate-assertion']);
      assert.equal(ca.principal_type, 'service_account');
      assert.equal(ca.sub, sa.id);
      assert.equal(ca.attributed_user, null);

      for (const seen of [b!, c!]) {
        assert.equal(seen.headers['x-trackgate-attributed-user'], alice.username);
        assert.equal(seen.headers['x-wandb-username'], undefined, 'only trackgate speaks for attribution');
        const claims = await verifyAssertion(seen.headers['x-trackgate-assertion']);
        assert.equal(claims.attributed_user, alice.username);
        assert.equal(claims.sub, sa.id);
      }
      noKeyUpstream(sa.key.key);
    });

    test('attribution to someone outside the team answers 403 and reaches nothing', async () => {
      upstream.reset();
      const claims: Array<Record<string, string>> = [{ 'X-WANDB-USERNAME': carol.username }, { 'X-WANDB-USERNAME': 'nobody-at-all' }, { 'X-WANDB-USER-EMAIL': `${carol.username}@${org}.example` }];
      for (const h of claims) {
        const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, h), body: VIEWER });
        assert.equal(r.status, 403);
        const body = (await r.json()) as { error: { code: string; message: string } };
        assert.match(body.error.message, /is not a member of the team/);
        assert.equal(body.error.code, 'attribution_not_member');
      }
      const verify = await fetch(`${app.url}/auth/verify`, { headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': carol.username }) });
      assert.equal(verify.status, 403);
      await verify.text();
      assert.equal(upstream.requests.length, 0);
    });

    test('attribution matches usernames case-insensitively, and a deactivated member is said to be deactivated', async () => {
      upstream.reset();
      const upper = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': alice.username.toUpperCase() }), body: VIEWER });
      assert.equal(upper.status, 200, 'X-WANDB-USERNAME: ALICE is alice');
      await upper.text();
      assert.equal(upstream.requests.at(-1)?.headers['x-trackgate-attributed-user'], alice.username);
      const dave = await app.createUser({ org, username: `dave-${org}` });
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${dave.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/users/${dave.username}`, { key: adminKey })).status, 204);
      const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': dave.username }), body: VIEWER });
      assert.equal(r.status, 403);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'user_deactivated');
      assert.match(body.error.message, /is deactivated/);
    });

    test('with a personal key the attribution headers are ignored', async () => {
      upstream.reset();
      const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(carol.key, { 'X-WANDB-USERNAME': alice.username }), body: VIEWER });
      assert.equal(r.status, 200);
      await r.text();
      const seen = upstream.requests[0]!;
      assert.equal(seen.headers['x-trackgate-user'], carol.username);
      assert.equal(seen.headers['x-trackgate-attributed-user'], undefined);
    });

    test('forward auth answers the same identity as headers', async () => {
      const r = await fetch(`${app.url}/auth/verify`, { headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': alice.username }) });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-trackgate-user'), sa.username);
      assert.equal(r.headers.get('x-trackgate-principal-type'), 'service_account');
      assert.equal(r.headers.get('x-trackgate-attributed-user'), alice.username);
      await verifyAssertion(r.headers.get('x-trackgate-assertion'));
      const none = await fetch(`${app.url}/auth/verify`);
      assert.equal(none.status, 401);
      assert.ok(none.headers.get('www-authenticate'));
      await none.text();
    });

    test("trackgate's own paths are not proxied", async () => {
      upstream.reset();
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: alice.key })).status, 200);
      assert.equal((await app.request('GET', '/healthz')).status, 200);
      assert.equal((await app.request('GET', '/.well-known/jwks.json')).status, 200);
      assert.equal(upstream.requests.length, 0);
    });

    test('a revoked key stops at once', async () => {
      const k = await app.request('POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: adminKey, body: { name: 'temp' } });
      assert.equal(k.status, 201);
      const ok = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(k.body.key), body: VIEWER });
      assert.equal(ok.status, 200);
      await ok.text();
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey })).status, 204);
      upstream.reset();
      const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(k.body.key), body: VIEWER });
      assert.equal(r.status, 401);
      const body = (await r.json()) as { error: { code: string; message: string; request_id: string }; errors?: Array<{ message: string; extensions: { code: string; request_id: string } }> };
      assert.equal(body.error.code, 'key_revoked');
      // The newest client reads only GraphQL's `data` and `errors`: the reason must be there too, or its user sees `{"data":null}`.
      assert.deepEqual(body.errors, [{ message: body.error.message, extensions: { code: 'key_revoked', request_id: body.error.request_id } }]);
      assert.match(body.errors[0]!.message, /API key revoked/);
      assert.equal(upstream.requests.length, 0);
      // Only the GraphQL path: other paths keep the one error shape.
      const other = await fetch(`${app.url}/files/acme/run/file_stream`, { method: 'POST', headers: clientHeaders(k.body.key), body: '{}' });
      assert.equal(other.status, 401);
      assert.equal(((await other.json()) as { errors?: unknown }).errors, undefined);
    });

    test('one keep-alive connection: each request is judged by the key it carries, and a revoked key fails on the very next request', async () => {
      // The gateway remembers the last key a connection sent (parsed and hashed); this checks that what
      // it remembers never stands in for what a request carries.
      const k = await app.request('POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: adminKey, body: { name: 'one-connection' } });
      assert.equal(k.status, 201);
      // One client connection (undici's Client is a single connection), kept alive across the requests.
      const client = new Client(app.url);
      const send = async (headers: Record<string, string | string[]>) => {
        const r = await client.request({ path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: VIEWER });
        await r.body.text();
        const seen = upstream.requests.at(-1);
        return { status: r.statusCode, user: r.statusCode === 200 ? seen?.headers['x-trackgate-user'] : undefined };
      };
      try {
        upstream.reset();
        assert.deepEqual(await send({ authorization: basic(k.body.key) }), { status: 200, user: sa.username });
        assert.deepEqual(await send({ authorization: basic(k.body.key) }), { status: 200, user: sa.username });
        assert.deepEqual(await send({ authorization: basic(alice.key) }), { status: 200, user: alice.username });
        assert.deepEqual(await send({ authorization: `Bearer ${k.body.key}` }), { status: 200, user: sa.username });
        assert.deepEqual(await send({ authorization: basic(k.body.key) }), { status: 200, user: sa.username });
        assert.equal((await send({ authorization: basic(k.body.key.slice(0, -1) + (k.body.key.endsWith('A') ? 'B' : 'A')) })).status, 401);
        assert.equal((await send({ authorization: [basic(k.body.key), basic(k.body.key)] })).status, 401);
        assert.equal((await send({})).status, 401);
        assert.deepEqual(await send({ authorization: basic(k.body.key) }), { status: 200, user: sa.username });
        assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey })).status, 204);
        assert.equal((await send({ authorization: basic(k.body.key) })).status, 401);
        assert.deepEqual(await send({ authorization: basic(alice.key) }), { status: 200, user: alice.username });
      } finally {
        await client.close();
      }
    });

    test('bad input: a clear 4xx or cleaned, nothing unauthenticated upstream, and the process keeps serving', async () => {
      upstream.reset();
      const good = alice.key;
      const cases: Array<[string, string, number]> = [
        ['unknown scheme', 'Negotiate abc', 401],
        ['bad base64', 'Basic ###', 401],
        ['base64 without a colon', 'Basic ' + Buffer.from('justakey').toString('base64'), 401],
        ['wrong length', basic('tgp-' + 'a'.repeat(39)), 401],
        ['wrong alphabet', basic('tgp-' + '_'.repeat(40)), 401],
        ['no prefix', basic('a'.repeat(40)), 401],
        ['bearer garbage', 'Bearer not.a.token', 401],
      ];
      for (const [what, auth, status] of cases) {
        const r = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: VIEWER });
        assert.equal(r.status, status, what);
        const b = (await r.json()) as { error: { code: string; message: string; request_id: string } };
        assert.ok(b.error.message && b.error.request_id, what);
        assert.ok(r.headers.get('www-authenticate'), what);
      }
      // Basic with a user other than "api" and a valid key: accepted.
      const other = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { Authorization: 'Basic ' + Buffer.from(`${alice.username}:${good}`).toString('base64') }, body: VIEWER });
      assert.equal(other.status, 200);
      await other.text();
      assert.equal(upstream.requests.length, 1);
      upstream.reset();

      // A 16 KB header: refused by the HTTP layer itself.
      const big = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { ...clientHeaders(good), 'X-Big': 'b'.repeat(16 * 1024) }, body: VIEWER });
      assert.equal(big.status, 431);
      await big.text();

      const { host } = new URL(app.url);
      // Two Authorization headers, the second a valid key: refused, whatever the order.
      const two = await rawRequest(app.url, `POST /graphql HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Basic Zm9vOmJhcg==\r\nAuthorization: ${basic(good)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      assert.match(two, /^HTTP\/1\.1 401/);
      assert.match(two, /more than one Authorization header/);

      // Request smuggling: Transfer-Encoding and Content-Length together, with a second request hidden in the body.
      const smuggled = await rawRequest(app.url, `POST /graphql HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic(good)}\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin-only HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.match(smuggled, /^HTTP\/1\.1 400/);
      assert.equal((smuggled.match(/HTTP\/1\.1 \d/g) ?? []).length, 1, 'one answer: the hidden request is not served');
      // An obfuscated Transfer-Encoding is refused too.
      const obfuscated = await rawRequest(app.url, `POST /graphql HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic(good)}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n`);
      assert.match(obfuscated, /^HTTP\/1\.1 (400|501)/);
      assert.equal(upstream.requests.length, 0, 'nothing reached the upstream');

      // Identity headers from the client are removed; trackgate's take their place.
      const forged = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: clientHeaders(good, { 'X-Trackgate-User': 'root', 'X-Trackgate-Principal-Type': 'service_account', 'X-Trackgate-Assertion': 'forged', 'X-Trackgate-Anything': 'x' }),
        body: VIEWER,
      });
      assert.equal(forged.status, 200);
      await forged.text();
      const seen = upstream.requests[0]!;
      assert.equal(seen.headers['x-trackgate-user'], alice.username);
      assert.equal(seen.headers['x-trackgate-principal-type'], 'user');
      assert.equal(seen.headers['x-trackgate-anything'], undefined);
      assert.notEqual(seen.headers['x-trackgate-assertion'], 'forged');
      assert.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-trackgate-user').length, 1);

      // Still serving.
      assert.equal((await app.request('GET', '/healthz')).status, 200);
      const after = await fetch(`${app.url}/graphql`, { method: 'POST', headers: clientHeaders(good), body: VIEWER });
      assert.equal(after.status, 200);
      await after.text();
    });

    test('a large upload streams through with a bounded memory cost', async () => {
      upstream.reset();
      const { port } = new URL(app.url);
      const total = 256 * 1024 * 1024;
      const chunk = Buffer.alloc(4 * 1024 * 1024, 1);
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/files/run-1/model.bin', headers: { Authorization: basic(alice.key), 'Content-Length': total } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', reject);
          let sent = 0;
          const pump = (): void => {
            while (sent < total) {
              sent += chunk.length;
              if (!req.write(chunk)) {
                req.once('drain', pump);
                return;
              }
            }
            req.end();
          };
          pump();
        });
        assert.equal(status, 200);
      } finally {
        clearInterval(sampler);
      }
      assert.equal(upstream.requests.at(-1)!.bodyBytes, total);
      // Client, gateway and upstream share this process: a buffering gateway would add the whole 256 MB.
      assert.ok(rssPeak - rssBefore < 160 * 1024 * 1024, `RSS grew by ${Math.round((rssPeak - rssBefore) / 1048576)} MB`);
    });

    test('TRACKGATE_IDENTITY_HEADERS=assertion: the upstream gets the signed assertion alone, with every claim', async () => {
      // A second gateway on the same database, set up for an upstream that verifies the assertion.
      const lean = await startApp(dialect, { upstreamUrl: upstream.url, identityHeaders: 'assertion' }, { shareWith: app });
      try {
        upstream.reset();
        const spoofed = { 'X-Trackgate-User': 'mallory', 'X-Trackgate-Assertion': 'forged' };
        const personal = await fetch(`${lean.url}/graphql`, { method: 'POST', headers: clientHeaders(alice.key, spoofed), body: VIEWER });
        assert.equal(personal.status, 200);
        await personal.text();
        const run = await fetch(`${lean.url}/graphql`, { method: 'POST', headers: clientHeaders(sa.key.key, { ...spoofed, 'X-WANDB-USERNAME': alice.username }), body: VIEWER });
        assert.equal(run.status, 200);
        await run.text();
        const [p, r] = upstream.requests;
        for (const seen of [p!, r!]) {
          const identity = Object.keys(seen.headers).filter((h) => h.startsWith('x-trackgate-'));
          assert.deepEqual(identity, ['x-trackgate-assertion'], 'no plain identity header, and nothing the client sent');
        }
        const cp = await verifyAssertion(p!.headers['x-trackgate-assertion']);
        assert.equal(cp.username, alice.username);
        assert.equal(cp.email, `${alice.username}@${org}.example`);
        assert.equal(cp.org, org);
        assert.deepEqual(cp.teams, [team]);
        assert.equal(cp.principal_type, 'user');
        const cr = await verifyAssertion(r!.headers['x-trackgate-assertion']);
        assert.equal(cr.sub, sa.id);
        assert.equal(cr.principal_type, 'service_account');
        assert.equal(cr.attributed_user, alice.username);
        assert.equal(cr.attributed_user_email, `${alice.username}@${org}.example`);
        noKeyUpstream(sa.key.key);

        // Forward auth answers the same: the assertion is the only identity header.
        const v = await fetch(`${lean.url}/auth/verify`, { headers: clientHeaders(sa.key.key, { 'X-WANDB-USERNAME': alice.username }) });
        assert.equal(v.status, 200);
        assert.equal(v.headers.get('x-trackgate-user'), null);
        assert.equal(v.headers.get('x-trackgate-attributed-user'), null);
        assert.equal((await verifyAssertion(v.headers.get('x-trackgate-assertion'))).attributed_user, alice.username);
      } finally {
        await lean.close();
      }
    });

    test('502 when the tracking API is down, 504 when it is slow', async () => {
      upstream.route('/slow', (_req, res) => {
        const t = setTimeout(() => res.end('late'), 5000);
        res.on('close', () => clearTimeout(t));
      });
      const slow = await fetch(`${app.url}/slow`, { headers: clientHeaders(alice.key) });
      assert.equal(slow.status, 504);
      assert.equal(((await slow.json()) as { error: { code: string } }).error.code, 'upstream_timeout');

      const down = await startApp(dialect, { upstreamUrl: 'http://127.0.0.1:9' });
      try {
        const d = await down.bootstrap();
        const r = await fetch(`${down.url}/graphql`, { method: 'POST', headers: clientHeaders(d.adminKey), body: VIEWER });
        assert.equal(r.status, 502);
        const body = (await r.json()) as { error: { code: string; message: string; request_id: string } };
        assert.equal(body.error.code, 'upstream_unavailable');
        assert.ok(body.error.request_id);
        assert.equal((await down.request('GET', '/healthz')).status, 200);
      } finally {
        await down.close();
      }
    });
  });
}
