/**
 * The reverse proxy and forward-auth handlers on their own, with a stand-in
 * authenticate function and a stub upstream, over real HTTP. The wiring into
 * the application (real keys, service accounts) is tested in
 * gateway-wire.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { openDatabase, migrateToLatest } from '../src/db/database.ts';
import type { Database } from '../src/db/database.ts';
import { SecretBox } from '../src/crypto/secret-box.ts';
import { SigningKeysRepository } from '../src/assertions/signing-keys.repository.ts';
import type { SigningKeysTables } from '../src/assertions/signing-keys.tables.ts';
import { SigningKeyService } from '../src/assertions/signing-keys.service.ts';
import { AssertionIssuer } from '../src/assertions/assertion-issuer.ts';
import { createJwksHandler } from '../src/assertions/jwks.handler.ts';
import { GatewayIdentity } from '../src/gateway/identity.ts';
import type { Authentication, AuthenticateFn } from '../src/gateway/identity.ts';
import type { AuthOutcome } from '../src/auth/authenticator.ts';
import type { IncomingMessage } from 'node:http';
import { createProxy } from '../src/gateway/proxy.ts';
import type { Proxy } from '../src/gateway/proxy.ts';
import { VERIFY_PREFIX, createVerifyHandler } from '../src/gateway/verify.ts';
import { TrustedProxies } from '../src/http/client-ip.ts';
import { createDispatcher, createHttpServer } from '../src/http/server.ts';
import { errors } from '../src/errors/app-error.ts';
import { readCredentials } from '../src/auth/credentials.ts';
import type { Principal } from '../src/auth/principal.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { rawRequest } from './support/net.ts';

const GOOD_KEY = 'tgp-' + 'A'.repeat(40);
const SA_KEY = 'tgs-' + 'B'.repeat(40);

const person: Principal = {
  type: 'user',
  via: 'api_key',
  orgId: 'org-1',
  orgSlug: 'acme',
  id: 'user-1',
  username: 'alice',
  email: 'alice@acme.test',
  displayName: 'Alice',
  orgRole: 'member',
  instanceAdmin: false,
  teams: [{ name: 'vision', role: 'member' }],
  keyId: 'key-1',
};
const robot: Principal = { ...person, type: 'service_account', id: 'sa-1', username: 'nightly-bot', email: null, orgRole: null, teams: [{ name: 'vision', role: 'member' }] };

/** Accepts GOOD_KEY (a person) and SA_KEY (a service account), as Basic or Bearer. */
const authenticate: AuthenticateFn = async (req) => {
  const c = readCredentials(req);
  if (c.kind === 'none') return { ok: false, anonymous: true };
  if (c.kind === 'invalid') return { ok: false, anonymous: false, error: errors.unauthenticated(c.message, 'invalid_credentials') };
  if (c.kind === 'api_key' && c.key === GOOD_KEY) return { ok: true, principal: person };
  if (c.kind === 'api_key' && c.key === SA_KEY) return { ok: true, principal: robot };
  return { ok: false, anonymous: false, error: errors.unauthenticated('invalid API key: no such key', 'invalid_key') };
};

/**
 * The stand-in in production's form (createGateway): the async path, and a
 * synchronous answer for a key it has verified before, as
 * Authenticator.authenticateCached answers from KeyVerifier's cache. So the
 * proxy and forward auth go through GatewayIdentity.resolveSync as they do
 * in production; asyncCalls tells which path answered.
 */
function productionLikeAuthentication(): Authentication & { asyncCalls: number } {
  const verified = new Map<string, AuthOutcome>();
  const auth = {
    asyncCalls: 0,
    authenticate: async (req: IncomingMessage, options: { allowSession: boolean }) => {
      auth.asyncCalls++;
      const outcome = await authenticate(req, options);
      const c = readCredentials(req);
      if (outcome.ok && c.kind === 'api_key') verified.set(c.key, outcome);
      return outcome;
    },
    cached: (req: IncomingMessage): AuthOutcome | undefined => {
      const c = readCredentials(req);
      // No session authenticator here: no credentials is anonymous at once, as in production without SSO.
      if (c.kind === 'none') return { ok: false, anonymous: true };
      return c.kind === 'api_key' ? verified.get(c.key) : undefined;
    },
  };
  return auth;
}

const basic = (key: string, user = 'api') => 'Basic ' + Buffer.from(`${user}:${key}`).toString('base64');

interface Gw {
  url: string;
  server: http.Server;
  proxy: Proxy;
}

async function startGateway(upstreamUrl: string, identity: GatewayIdentity, keys: SigningKeyService, timeoutMs = 5_000): Promise<Gw> {
  const trusted = new TrustedProxies(['127.0.0.1/8', '::1/128']);
  const proxy = createProxy({ upstreamUrl, timeoutMs, connections: 8, identity, trustedProxies: trusted, publicUrl: 'http://gw.test' });
  const verify = createVerifyHandler({ identity, trustedProxies: trusted, publicUrl: 'http://gw.test' });
  const lean = new Map([
    ['/auth/verify', verify],
    ['/.well-known/jwks.json', createJwksHandler(keys)],
  ]);
  const server = createHttpServer(
    createDispatcher({
      lean,
      leanPrefixes: [[VERIFY_PREFIX, verify]],
      proxy: proxy.handler,
      app: (_req, res) => {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end('{"error":{"code":"not_found","message":"own path"}}');
      },
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, proxy };
}

async function stopGateway(gw: Gw): Promise<void> {
  gw.server.closeAllConnections();
  await new Promise<void>((r) => gw.server.close(() => r()));
  await gw.proxy.close();
}


/** node:http, for headers fetch refuses to send (Connection). */
function httpRequest(url: string, options: { method: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method, headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('gateway proxy and forward auth (stand-in authentication)', () => {
  let database: Database<SigningKeysTables>;
  let keys: SigningKeyService;
  let identity: GatewayIdentity;
  let auth: ReturnType<typeof productionLikeAuthentication>;
  let upstream: StubUpstream;
  let gw: Gw;

  before(async () => {
    database = openDatabase<SigningKeysTables>('sqlite::memory:');
    await migrateToLatest(database);
    keys = new SigningKeyService(new SigningKeysRepository(database.db), new SecretBox('x'.repeat(64)), { rotationMs: 0, reloadMs: 0 });
    await keys.start();
    const issuer = new AssertionIssuer(keys, { issuer: 'http://gw.test', audience: 'http://tracking.test', ttlSeconds: 60 });
    auth = productionLikeAuthentication();
    identity = new GatewayIdentity(auth, issuer, async (_p, claim) => {
      if (claim.username === 'bob' || claim.email === 'bob@acme.test') return { id: 'user-2', username: 'bob', email: 'bob@acme.test' };
      throw errors.forbidden(`user "${claim.username ?? claim.email}" is not a member of the team "vision"`, 'attribution_not_member');
    });
    upstream = await startUpstream();
    gw = await startGateway(upstream.url, identity, keys);
  });

  after(async () => {
    await stopGateway(gw);
    await upstream.close();
    keys.stop();
    await database.close();
  });

  it('forwards an authenticated request with identity headers and a verifiable assertion, and no credentials', async () => {
    upstream.reset();
    const res = await fetch(`${gw.url}/graphql?x=1&y=%20z`, {
      method: 'POST',
      headers: {
        Authorization: basic(GOOD_KEY),
        'Content-Type': 'application/json',
        'X-Trackgate-User': 'mallory',
        'X-Trackgate-Whatever': 'forged',
        'X-WANDB-USERNAME': 'bob',
        Cookie: 'trackgate.sid=secret; theme=dark; __Host-trackgate_csrf=t',
        'X-Custom': 'kept',
      },
      body: '{"query":"query Viewer{ viewer { id } }"}',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-upstream'), 'stub');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
    assert.ok(res.headers.get('x-request-id'));
    await res.json();
    const seen = upstream.requests[0]!;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/graphql?x=1&y=%20z');
    assert.equal(seen.body?.toString(), '{"query":"query Viewer{ viewer { id } }"}');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-trackgate-user'], 'alice');
    assert.equal(seen.headers['x-trackgate-email'], 'alice@acme.test');
    assert.equal(seen.headers['x-trackgate-org'], 'acme');
    assert.equal(seen.headers['x-trackgate-teams'], 'vision');
    assert.equal(seen.headers['x-trackgate-principal-type'], 'user');
    assert.equal(seen.headers['x-trackgate-whatever'], undefined);
    // A personal key ignores the attribution headers, and they do not travel upstream.
    assert.equal(seen.headers['x-trackgate-attributed-user'], undefined);
    assert.equal(seen.headers['x-wandb-username'], undefined);
    assert.equal(seen.headers.cookie, 'theme=dark');
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.ok(!JSON.stringify(seen.rawHeaders).includes(GOOD_KEY));
    const jwks = (await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as { keys: [] };
    const { payload, protectedHeader } = await jwtVerify(String(seen.headers['x-trackgate-assertion']), createLocalJWKSet(jwks), {
      issuer: 'http://gw.test',
      audience: 'http://tracking.test',
      algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'user-1');
    assert.equal(payload.org, 'acme');
    assert.deepEqual(payload.teams, ['vision']);
    assert.equal(payload.principal_type, 'user');
    assert.equal(payload.attributed_user, null);
    assert.ok(payload.exp! - payload.iat! <= 60);
  });

  it('reuses the signed assertion for the same principal', async () => {
    upstream.reset();
    for (let i = 0; i < 3; i++) await (await fetch(`${gw.url}/files/x`, { headers: { Authorization: basic(GOOD_KEY) } })).text();
    const tokens = new Set(upstream.requests.map((r) => r.headers['x-trackgate-assertion']));
    assert.equal(tokens.size, 1);
  });

  it('answers a key verified before synchronously (resolveSync), with the same identity, in the proxy and forward auth', async () => {
    await (await fetch(`${gw.url}/files/warm`, { headers: { Authorization: basic(GOOD_KEY) } })).text();
    upstream.reset();
    const before = auth.asyncCalls;
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${gw.url}/files/x`, { headers: { Authorization: basic(GOOD_KEY) } })).status, 200);
    const verify = await fetch(`${gw.url}/auth/verify`, { headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(verify.status, 200);
    assert.equal(verify.headers.get('x-trackgate-user'), 'alice');
    assert.equal(auth.asyncCalls, before, 'no request took the async path');
    assert.equal(upstream.requests.length, 3);
    for (const seen of upstream.requests) {
      assert.equal(seen.headers['x-trackgate-user'], 'alice');
      assert.equal(seen.headers['x-trackgate-teams'], 'vision');
      assert.ok(seen.headers['x-trackgate-assertion']);
    }
    // A service account's settled attributions, accepted and refused, are answered synchronously too.
    const sa = (user: string) => fetch(`${gw.url}/graphql`, { method: 'POST', headers: { Authorization: basic(SA_KEY), 'X-WANDB-USERNAME': user }, body: '{}' });
    await (await sa('bob')).text();
    await (await sa('eve')).text();
    upstream.reset();
    const afterWarm = auth.asyncCalls;
    const ok = await sa('bob');
    assert.equal(ok.status, 200);
    await ok.text();
    assert.equal(upstream.requests[0]!.headers['x-trackgate-attributed-user'], 'bob');
    const refused = await sa('eve');
    assert.equal(refused.status, 403);
    await refused.text();
    assert.equal(auth.asyncCalls, afterWarm, 'the attributions were answered without the async path');
  });

  it('attributes a service-account run to a team member, and refuses anyone else with 403', async () => {
    upstream.reset();
    const ok = await fetch(`${gw.url}/graphql`, { method: 'POST', headers: { Authorization: basic(SA_KEY), 'X-WANDB-USERNAME': 'bob' }, body: '{}' });
    assert.equal(ok.status, 200);
    await ok.text();
    const seen = upstream.requests[0]!;
    assert.equal(seen.headers['x-trackgate-principal-type'], 'service_account');
    assert.equal(seen.headers['x-trackgate-user'], 'nightly-bot');
    assert.equal(seen.headers['x-trackgate-attributed-user'], 'bob');
    const bad = await fetch(`${gw.url}/graphql`, { method: 'POST', headers: { Authorization: basic(SA_KEY), 'X-WANDB-USERNAME': 'eve' }, body: '{}' });
    assert.equal(bad.status, 403);
    const body = (await bad.json()) as { error: { code: string; message: string; request_id: string } };
    assert.match(body.error.message, /not a member of the team/);
    assert.ok(body.error.request_id);
    assert.equal(upstream.requests.length, 1);
  });

  it('answers 401 with WWW-Authenticate without credentials and sends nothing upstream; a browser is sent to log in', async () => {
    upstream.reset();
    const res = await fetch(`${gw.url}/graphql`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /Basic/);
    const body = (await res.json()) as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'unauthenticated');
    const browser = await fetch(`${gw.url}/runs/abc?tab=logs`, { headers: { Accept: 'text/html' }, redirect: 'manual' });
    assert.equal(browser.status, 302);
    assert.equal(browser.headers.get('location'), '/login?return_to=%2Fruns%2Fabc%3Ftab%3Dlogs');
    const wrong = await fetch(`${gw.url}/graphql`, { headers: { Authorization: basic('tgp-' + 'C'.repeat(40)) } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    assert.equal(upstream.requests.length, 0);
  });

  it('keeps status codes, HEAD, PUT and removes headers named in Connection', async () => {
    upstream.reset();
    upstream.route('/status/', (req, res) => {
      res.writeHead(Number(req.url!.slice(8)), { 'X-Hop': 'drop-me', Connection: 'X-Hop', 'X-Keep': 'yes' });
      res.end(req.method === 'HEAD' ? undefined : 'nope');
    });
    const r = await httpRequest(`${gw.url}/status/418`, { method: 'PUT', headers: { Authorization: basic(GOOD_KEY), Connection: 'X-Secret', 'X-Secret': 's' }, body: 'x' });
    assert.equal(r.status, 418);
    assert.equal(r.body, 'nope');
    assert.equal(r.headers['x-hop'], undefined);
    assert.equal(r.headers['x-keep'], 'yes');
    assert.equal(upstream.requests.at(-1)!.headers['x-secret'], undefined);
    const h = await fetch(`${gw.url}/status/204`, { method: 'HEAD', headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(h.status, 204);
  });

  it('passes response bodies through byte for byte, small and large, and gives every request its own id', async () => {
    upstream.reset();
    // Every byte value: a small first chunk is sent with the response head as a latin1 string (see ProxyHandler.onData).
    const small = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const large = Buffer.alloc(200_000);
    for (let i = 0; i < large.length; i++) large[i] = (i * 7919) % 256;
    upstream.route('/bytes/', (req, res) => {
      const body = req.url === '/bytes/small' ? small : req.url === '/bytes/large' ? large : Buffer.alloc(0);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
      res.end(body);
    });
    const ids = new Set<string>();
    for (const [path, want] of [['/bytes/small', small], ['/bytes/large', large], ['/bytes/empty', Buffer.alloc(0)], ['/bytes/small', small]] as const) {
      const r = await fetch(`${gw.url}${path}`, { headers: { Authorization: basic(GOOD_KEY) } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-length'), String(want.length));
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(want), `${path}: the body arrived unchanged`);
      const id = r.headers.get('x-request-id')!;
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(upstream.requests.at(-1)!.headers['x-request-id'], id);
      ids.add(id);
    }
    assert.equal(ids.size, 4, 'a new id for every request');
  });

  it('answers pipelined requests on one connection in order, each body whole, the later ones ready first', async () => {
    // The first answer is the slowest, so the later responses are complete before they may be sent:
    // Node holds them until the connection is theirs (the response head and first chunk are written
    // with the socket uncorked at once, see ProxyHandler.onData).
    upstream.route('/pipe/', (req, res) => {
      const n = Number(req.url!.slice(6));
      const body = n === 3 ? 'x'.repeat(20_000) : `pipe-${n}`;
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
        res.end(body);
      }, n === 1 ? 150 : 0);
    });
    const { port } = new URL(gw.url);
    const auth = basic(GOOD_KEY);
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(port), '127.0.0.1', () => {
        s.write(
          `GET /pipe/1 HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n` +
            `POST /pipe/2 HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: 2\r\n\r\nhi` +
            `GET /pipe/3 HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n` +
            `GET /pipe/4 HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`,
        );
      });
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    // Each answer follows the previous body directly; no body here contains "HTTP/1.1 ".
    const statuses = raw.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    assert.deepEqual(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const bodies = raw.split(/HTTP\/1\.1 (?=\d{3} )/).slice(1).map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(bodies.map((b) => (b.length > 100 ? `${b[0]}×${b.length}` : b)), ['pipe-1', 'pipe-2', 'x×20000', 'pipe-4']);
  });

  it('streams a large upload to the upstream while it is still being sent', async () => {
    upstream.reset();
    const { port } = new URL(gw.url);
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const firstByte = upstream.firstBodyByte();
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/files/upload', method: 'PUT', headers: { Authorization: basic(GOOD_KEY), 'Content-Length': total } }, (r) => {
        let b = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (b += d));
        r.on('end', () => resolve({ status: r.statusCode!, body: b }));
      });
      req.on('error', reject);
      // Half of the body, then wait until the upstream has seen bytes: a buffering proxy would never forward them.
      let sent = 0;
      const writeSome = (limit: number, done: () => void): void => {
        while (sent < limit) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', () => writeSome(limit, done));
            return;
          }
        }
        done();
      };
      writeSome(total / 2, () => {
        void firstByte.then(() => writeSome(total, () => req.end()));
      });
    });
    assert.equal(res.status, 200);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.bodyBytes, total);
    assert.equal(JSON.parse(res.body).bytes, total);
  });

  it('streams a response as the upstream produces it', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    upstream.route('/stream', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first\n');
      void released.then(() => res.end('second\n'));
    });
    const res = await fetch(`${gw.url}/stream`, { headers: { Authorization: basic(GOOD_KEY) } });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value!).toString(), 'first\n');
    release();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    assert.equal(rest, 'second\n');
  });

  it('answers 504 for a slow upstream and 502 for an unreachable one, and keeps serving', async () => {
    const slow = await startGateway(upstream.url, identity, keys, 300);
    upstream.route('/slow', (_req, res) => {
      const t = setTimeout(() => res.end('late'), 3000);
      res.on('close', () => clearTimeout(t));
    });
    try {
      const started = Date.now();
      const r = await fetch(`${slow.url}/slow`, { headers: { Authorization: basic(GOOD_KEY) } });
      assert.equal(r.status, 504);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'upstream_timeout');
      assert.ok(Date.now() - started < 2500);
    } finally {
      await stopGateway(slow);
    }
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const dead = await startGateway(`http://127.0.0.1:${deadPort}`, identity, keys);
    try {
      const r = await fetch(`${dead.url}/graphql`, { method: 'POST', headers: { Authorization: basic(GOOD_KEY) }, body: 'x'.repeat(100_000) });
      assert.equal(r.status, 502);
      const body = (await r.json()) as { error: { code: string; message: string; request_id: string } };
      assert.equal(body.error.code, 'upstream_unavailable');
      assert.ok(body.error.request_id);
    } finally {
      await stopGateway(dead);
    }
    const again = await fetch(`${gw.url}/graphql`, { headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(again.status, 200);
    await again.text();
  });

  it('refuses bad input with a clear 4xx and forwards nothing unauthenticated', async () => {
    upstream.reset();
    const cases: Array<[string, Record<string, string>, number]> = [
      ['unknown scheme', { Authorization: 'Digest abc' }, 401],
      ['bad base64', { Authorization: 'Basic !!!notbase64' }, 401],
      ['wrong length', { Authorization: basic('tgp-abc') }, 401],
      ['wrong alphabet', { Authorization: basic('tgp-' + '$'.repeat(40)) }, 401],
    ];
    for (const [what, headers, status] of cases) {
      const r = await fetch(`${gw.url}/graphql`, { method: 'POST', headers, body: '{}' });
      assert.equal(r.status, status, what);
      const b = (await r.json()) as { error: { code: string } };
      assert.ok(b.error.code, what);
    }
    // Basic with a user other than "api" and a valid key is accepted (older clients differ).
    const other = await fetch(`${gw.url}/graphql`, { headers: { Authorization: basic(GOOD_KEY, 'someone') } });
    assert.equal(other.status, 200);
    await other.text();
    assert.equal(upstream.requests.length, 1);
    upstream.reset();

    const big = await fetch(`${gw.url}/graphql`, { headers: { Authorization: basic(GOOD_KEY), 'X-Pad': 'p'.repeat(16 * 1024) } });
    assert.equal(big.status, 431);
    await big.text();

    const { host } = new URL(gw.url);
    const twice = await rawRequest(gw.url, `GET /graphql HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${basic(GOOD_KEY)}\r\nAuthorization: ${basic('tgp-' + 'C'.repeat(40))}\r\nConnection: close\r\n\r\n`);
    assert.match(twice, /^HTTP\/1\.1 401/);
    assert.match(twice, /more than one Authorization header/);
    // Header names are read from the raw list on the hot paths: any case is the same header.
    const upper = await rawRequest(gw.url, `GET /auth/verify HTTP/1.1\r\nHost: ${host}\r\nAUTHORIZATION: ${basic(GOOD_KEY)}\r\nConnection: close\r\n\r\n`);
    assert.match(upper, /^HTTP\/1\.1 200/);
    assert.match(upper, /x-trackgate-user: alice/i);
    const twiceMixed = await rawRequest(gw.url, `GET /auth/verify HTTP/1.1\r\nHost: ${host}\r\nauthorization: ${basic(GOOD_KEY)}\r\nAuthoriZation: ${basic(GOOD_KEY)}\r\nConnection: close\r\n\r\n`);
    assert.match(twiceMixed, /^HTTP\/1\.1 401/);
    assert.match(twiceMixed, /more than one Authorization header/);

    const smuggle = await rawRequest(
      gw.url,
      `POST /graphql HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /graphql HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    assert.match(smuggle, /^HTTP\/1\.1 400/);
    assert.equal((smuggle.match(/HTTP\/1\.1 /g) ?? []).length, 1);
    assert.equal(upstream.requests.length, 0);

    const still = await fetch(`${gw.url}/graphql`, { headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(still.status, 200);
    await still.text();
  });

  it('forward auth: 200 with identity headers, 401 with WWW-Authenticate, a login Location for browsers, 403 for a failed attribution', async () => {
    const ok = await fetch(`${gw.url}/auth/verify`, { headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-trackgate-user'), 'alice');
    assert.equal(ok.headers.get('x-trackgate-principal-type'), 'user');
    assert.ok(ok.headers.get('x-trackgate-assertion'));

    const none = await fetch(`${gw.url}/auth/verify`);
    assert.equal(none.status, 401);
    assert.ok(none.headers.get('www-authenticate'));
    assert.equal(none.headers.get('location'), null);
    await none.text();

    const browser = await fetch(`${gw.url}/auth/verify`, { headers: { Accept: 'text/html,*/*', 'X-Original-URI': '/runs/1?x=y' } });
    assert.equal(browser.status, 401);
    assert.equal(browser.headers.get('location'), '/login?return_to=%2Fruns%2F1%3Fx%3Dy');
    await browser.text();

    const evil = await fetch(`${gw.url}/auth/verify`, { headers: { Accept: 'text/html', 'X-Original-URI': '//evil.test/x' } });
    assert.equal(evil.headers.get('location'), '/login');
    await evil.text();

    const bad = await fetch(`${gw.url}/auth/verify`, { headers: { Authorization: basic('tgp-' + 'C'.repeat(40)) } });
    assert.equal(bad.status, 401);
    await bad.text();

    const attributed = await fetch(`${gw.url}/auth/verify`, { headers: { Authorization: basic(SA_KEY), 'X-WANDB-USER-EMAIL': 'bob@acme.test' } });
    assert.equal(attributed.status, 200);
    assert.equal(attributed.headers.get('x-trackgate-attributed-user'), 'bob');

    const refused = await fetch(`${gw.url}/auth/verify`, { headers: { Authorization: basic(SA_KEY), 'X-WANDB-USERNAME': 'eve' } });
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /not a member of the team/);
  });

  it("forward auth in Envoy ext_authz's path-prefix form: /auth/verify/<original path> with the original method", async () => {
    upstream.reset();
    const ok = await fetch(`${gw.url}/auth/verify/graphql?x=1`, { method: 'POST', headers: { Authorization: basic(GOOD_KEY), 'Content-Length': '0' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-trackgate-user'), 'alice');
    assert.ok(ok.headers.get('x-trackgate-assertion'));
    await ok.text();
    const del = await fetch(`${gw.url}/auth/verify/files/x`, { method: 'DELETE', headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(del.status, 200);
    await del.text();
    // A check request is never proxied, whatever its path.
    assert.equal(upstream.requests.length, 0);

    const none = await fetch(`${gw.url}/auth/verify/graphql`, { method: 'POST', body: '{}' });
    assert.equal(none.status, 401);
    assert.ok(none.headers.get('www-authenticate'));
    await none.text();

    const browser = await fetch(`${gw.url}/auth/verify/runs/1?tab=files`, { headers: { Accept: 'text/html' } });
    assert.equal(browser.status, 401);
    assert.equal(browser.headers.get('location'), '/login?return_to=%2Fruns%2F1%3Ftab%3Dfiles');
    await browser.text();
    for (const evil of ['//evil.test/x', '/\\evil.test/x', '/%0d%0aSet-Cookie:x=1']) {
      const r = await fetch(`${gw.url}/auth/verify/${evil.slice(1)}`, { headers: { Accept: 'text/html' } });
      assert.equal(r.status, 401, evil);
      // Never anywhere but a path of this origin.
      const location = r.headers.get('location') ?? '';
      const returnTo = new URL(location, 'http://gw.test').searchParams.get('return_to');
      assert.ok(location.startsWith('/login'), location);
      assert.ok(returnTo === null || (returnTo.startsWith('/') && !returnTo.startsWith('//') && !/[\r\n\\]/.test(returnTo)), `${evil} → ${location}`);
      if (evil.startsWith('//')) assert.equal(location, '/login');
      await r.text();
    }

    const refused = await fetch(`${gw.url}/auth/verify/graphql`, { method: 'POST', headers: { Authorization: basic(SA_KEY), 'X-WANDB-USERNAME': 'eve', 'Content-Length': '0' } });
    assert.equal(refused.status, 403);
    await refused.text();
    // Not a prefix match: an own path like any other.
    const near = await fetch(`${gw.url}/auth/verifyx`, { headers: { Authorization: basic(GOOD_KEY) } });
    assert.equal(near.status, 404);
    await near.text();
  });

  it('builds the login Location from forwarded headers only for a trusted proxy', async () => {
    const trusted = new TrustedProxies(['10.0.0.0/8']);
    const handler = createVerifyHandler({ identity, trustedProxies: trusted, publicUrl: 'http://gw.test' });
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/verify`;
      const r = await fetch(url, { headers: { Accept: 'text/html', 'X-Original-URI': '/runs/1' } });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('location'), '/login');
      await r.text();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
