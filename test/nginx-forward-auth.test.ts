/**
 * A real nginx with the shipped deploy/nginx/trackgate.conf in front of a stub
 * tracking API, asking a running trackgate (/auth/verify) about each request.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { basic, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import type { ConfigInput } from '../src/config/config.ts';
import { generateKey } from '../src/keys/key-format.ts';
import { nginxBinary, startNginx } from './support/nginx.ts';
import type { Nginx } from './support/nginx.ts';
import { freePort } from './support/net.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';

/** A stub tracking API, a trackgate with a bootstrapped organization, and nginx with the shipped configuration in front of both. */
interface Stack {
  app: TestApp;
  upstream: StubUpstream;
  nginx: Nginx;
  org: string;
  adminKey: string;
  close(): Promise<void>;
}

async function startStack(overrides: ConfigInput = {}): Promise<Stack> {
  const upstream = await startUpstream();
  let app: TestApp | null = null;
  try {
    app = await startApp('sqlite', overrides);
    const { org, adminKey } = await app.bootstrap();
    const nginx = await startNginx({ trackgatePort: Number(new URL(app.url).port), upstreamPort: upstream.port });
    const started = app;
    return {
      app: started,
      upstream,
      nginx,
      org,
      adminKey,
      close: async () => {
        await nginx.close();
        await started.close();
        await upstream.close();
      },
    };
  } catch (err) {
    await app?.close();
    await upstream.close();
    throw err;
  }
}

describe('nginx auth_request in front of the tracking API', { skip: nginxBinary() ? false : 'nginx is not installed' }, () => {
  let stack: Stack | undefined;
  let app: TestApp;
  let upstream: StubUpstream;
  let nginx: Nginx;
  let adminKey: string;
  let org: string;

  before(async () => {
    stack = await startStack();
    ({ app, upstream, nginx, org, adminKey } = stack);
  });
  after(() => stack?.close());

  test('no key → 401 with WWW-Authenticate, and nothing reaches the tracking API', async () => {
    upstream.reset();
    const r = await fetch(`${nginx.url}/graphql`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 401, nginx.errorLog());
    assert.match(r.headers.get('www-authenticate') ?? '', /Basic realm="trackgate"/);
    await r.text();
    assert.equal(upstream.requests.length, 0);
  });

  test('a browser without a session is sent to the login page with where it was going', async () => {
    const r = await fetch(`${nginx.url}/runs/abc?tab=files`, { headers: { Accept: 'text/html' }, redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/login?return_to=%2Fruns%2Fabc%3Ftab%3Dfiles');
    await r.text();
  });

  test('a good key → 200, with the identity headers and a valid assertion at the tracking API, and no key', async () => {
    upstream.reset();
    const me = await app.request('GET', '/gateway/v1/me', { key: adminKey });
    const r = await fetch(`${nginx.url}/graphql?q=1`, {
      method: 'POST',
      headers: { Authorization: basic(adminKey), 'Content-Type': 'application/json', 'X-Trackgate-User': 'forged', 'X-WANDB-USERNAME': 'someone' },
      body: '{"query":"query Viewer{ viewer { id } }"}',
    });
    assert.equal(r.status, 200, nginx.errorLog());
    await r.text();
    assert.equal(upstream.requests.length, 1);
    const seen = upstream.requests[0]!;
    assert.equal(seen.url, '/graphql?q=1');
    assert.equal(seen.body?.toString(), '{"query":"query Viewer{ viewer { id } }"}');
    assert.equal(seen.headers['x-trackgate-user'], me.body.username);
    assert.equal(seen.headers['x-trackgate-org'], org);
    assert.equal(seen.headers['x-trackgate-principal-type'], 'user');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-wandb-username'], undefined);
    assert.ok(!JSON.stringify(seen.rawHeaders).includes(adminKey));
    const jwks = await (await fetch(`${nginx.url}/.well-known/jwks.json`)).json();
    const { payload } = await jwtVerify(String(seen.headers['x-trackgate-assertion']), createLocalJWKSet(jwks as never), { issuer: app.gw.core.config.publicUrl });
    assert.equal(payload.org, org);
  });

  test('a revoked key → 401', async () => {
    const k = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'to-revoke' } });
    assert.equal(k.status, 201);
    const ok = await fetch(`${nginx.url}/files/x`, { headers: { Authorization: basic(k.body.key) } });
    assert.equal(ok.status, 200);
    await ok.text();
    assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey })).status, 204);
    upstream.reset();
    const r = await fetch(`${nginx.url}/files/x`, { headers: { Authorization: basic(k.body.key) } });
    assert.equal(r.status, 401);
    await r.text();
    assert.equal(upstream.requests.length, 0);
  });

  test("trackgate's own paths pass through nginx to trackgate", async () => {
    const r = await fetch(`${nginx.url}/gateway/v1/me`, { headers: { Authorization: basic(adminKey) } });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { orgs: Array<{ slug: string }> }).orgs[0]!.slug, org);
  });
});

describe('nginx auth_request when trackgate refuses or cannot answer', { skip: nginxBinary() ? false : 'nginx is not installed' }, () => {
  let stack: Stack | undefined;
  let upstream: StubUpstream;
  let nginx: Nginx;
  let adminKey: string;

  before(async () => {
    // Three distinct failed keys per address, then 429: what nginx's auth_request alone would turn into a 500.
    stack = await startStack({ authFailureLimit: 3 });
    ({ upstream, nginx, adminKey } = stack);
  });
  after(() => stack?.close());

  test("an address blocked after many distinct failed keys gets trackgate's 429 with Retry-After through nginx, not a 500", async () => {
    upstream.reset();
    // nginx appends its peer (127.0.0.1, trusted) to X-Forwarded-For, so trackgate counts 203.0.113.7.
    // A different well-formed key each time: a repeated bad key counts once, a malformed one not at all.
    const bad = () => ({ Authorization: basic(generateKey('user').key), 'X-Forwarded-For': '203.0.113.7' });
    const statuses: number[] = [];
    let limited: Response | null = null;
    for (let i = 0; i < 10 && !limited; i++) {
      const r = await fetch(`${nginx.url}/graphql`, { method: 'POST', headers: bad(), body: '{}' });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
      else await r.text();
    }
    assert.ok(limited, `no 429 after ${statuses.join(', ')}\n${nginx.errorLog()}`);
    assert.deepEqual(statuses.slice(0, 3), [401, 401, 401]);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1, `Retry-After: ${limited.headers.get('retry-after')}`);
    assert.equal(limited.headers.get('cache-control'), 'no-store');
    const body = (await limited.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'rate_limited');
    // Blocked means no more unknown keys looked up; a good key is still answered, from there and elsewhere.
    assert.equal(upstream.requests.length, 0);
    const good = await fetch(`${nginx.url}/graphql`, { method: 'POST', headers: { ...bad(), Authorization: basic(adminKey) }, body: '{}' });
    assert.equal(good.status, 200, nginx.errorLog());
    await good.text();
    assert.equal(upstream.requests.length, 1);
    const again = await fetch(`${nginx.url}/graphql`, { method: 'POST', headers: bad(), body: '{}' });
    assert.equal(again.status, 429);
    await again.text();
    assert.equal(upstream.requests.length, 1);
    const other = await fetch(`${nginx.url}/graphql`, { method: 'POST', headers: { Authorization: basic(adminKey), 'X-Forwarded-For': '203.0.113.8' }, body: '{}' });
    assert.equal(other.status, 200, nginx.errorLog());
    await other.text();
    assert.equal(upstream.requests.length, 2);
  });

  test('trackgate unreachable → 502 that says so, and nothing reaches the tracking API', async () => {
    const down = await startNginx({ trackgatePort: await freePort(), upstreamPort: upstream.port });
    try {
      upstream.reset();
      const r = await fetch(`${down.url}/graphql`, { method: 'POST', headers: { Authorization: basic(adminKey) }, body: '{}' });
      assert.equal(r.status, 502, down.errorLog());
      const body = (await r.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'auth_unavailable');
      assert.equal(upstream.requests.length, 0);
    } finally {
      await down.close();
    }
  });

  test("the tracking API's own 500 reaches the client as it is", async () => {
    upstream.reset();
    upstream.route('/fail', (_req, res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('the tracking API broke');
    });
    const r = await fetch(`${nginx.url}/fail`, { headers: { Authorization: basic(adminKey) } });
    assert.equal(r.status, 500);
    assert.equal(await r.text(), 'the tracking API broke');
    assert.equal(upstream.requests.length, 1);
  });
});
