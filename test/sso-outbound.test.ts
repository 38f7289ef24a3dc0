/**
 * Fetches from identity providers (issue 13, "oversized IdP document" and
 * "SSRF through the issuer URL"): every answer is bounded, typed and timed,
 * and no fetch goes to a loopback, private or otherwise non-public address
 * outside development mode, whatever the URL or DNS name says.
 *
 * Real connections go to 127.0.0.1 and ::1 only. Addresses beyond this
 * machine (10.x, 169.254.x, ...) are checked at the policy layer, which
 * refuses them before any socket exists, so a broken policy could not send
 * a packet anywhere from these tests.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { freePort } from './support/net.ts';
import { loadConfig } from '../src/config/config.ts';
import { blockedAddressReason } from '../src/sso/oidc/address-policy.ts';
import { AddressNotAllowedError, IdpFetcher, IdpFetchError } from '../src/sso/oidc/idp-fetch.ts';
import { exchangeCode } from '../src/sso/oidc/client.ts';
import { verifyIdToken } from '../src/sso/oidc/id-token.ts';
import { JwksRegistry } from '../src/sso/oidc/jwks.ts';
import { OidcLoginError } from '../src/sso/oidc/problems.ts';

const MB = 1024 * 1024;

// ---------------------------------------------------------------------------
// A TCP listener that only counts connections: the target of SSRF attempts.

interface Listener {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

async function countingListener(host: string): Promise<Listener | null> {
  let count = 0;
  const s = net.createServer((sock) => {
    count++;
    sock.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, host, resolve);
    });
  } catch {
    return null; // e.g. no IPv6 loopback on this machine
  }
  return {
    port: (s.address() as AddressInfo).port,
    connections: () => count,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

/** Names /etc/hosts maps to a loopback address (localhost, and whatever else this machine has). */
function loopbackHostNames(): string[] {
  const names = new Set(['localhost']);
  try {
    for (const line of readFileSync('/etc/hosts', 'utf8').split('\n')) {
      const [addr, ...hosts] = line.replace(/#.*/, '').trim().split(/\s+/);
      if (addr && (addr.startsWith('127.') || addr === '::1')) for (const h of hosts) if (/^[a-z0-9.-]+$/i.test(h)) names.add(h);
    }
  } catch {
    /* no hosts file */
  }
  return [...names];
}

// ---------------------------------------------------------------------------
// A hostile IdP: an HTTP server on 127.0.0.1 whose routes the tests set, with
// a count of requests and of the bytes each route managed to hand to the socket.

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface HostileIdp {
  origin: string;
  route(path: string, handler: Handler): void;
  stats(path: string): { requests: number; bytes: number };
  close(): Promise<void>;
}

async function startHostileIdp(): Promise<HostileIdp> {
  const routes = new Map<string, Handler>();
  const stats = new Map<string, { requests: number; bytes: number }>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    const s = stats.get(path) ?? { requests: 0, bytes: 0 };
    stats.set(path, s);
    s.requests++;
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer | string, ...rest: never[]) => {
      s.bytes += Buffer.byteLength(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    const h = routes.get(path);
    if (!h) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    Promise.resolve(h(req, res)).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    route: (path, handler) => routes.set(path, handler),
    stats: (path) => stats.get(path) ?? { requests: 0, bytes: 0 },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function sendJson(res: ServerResponse, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) }).end(text);
}

/**
 * Streams a valid JSON object of about `size` bytes (the fields, then one
 * padding string), chunked with no Content-Length unless `declare` is set,
 * honouring backpressure and stopping when the client goes away.
 */
async function streamHugeJson(res: ServerResponse, fields: Record<string, unknown>, size: number, options: { declare?: boolean } = {}): Promise<void> {
  const head = Buffer.from(JSON.stringify(fields).slice(0, -1) + ',"padding":"');
  const tail = Buffer.from('"}');
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const headers: Record<string, string | number> = { 'content-type': 'application/json' };
  if (options.declare) headers['content-length'] = head.length + size + tail.length;
  res.writeHead(200, headers);
  let gone = false;
  let wake: (() => void) | null = null;
  res.on('close', () => {
    gone = true;
    wake?.();
  });
  res.write(head);
  for (let sent = 0; sent < size && !gone; sent += chunk.length) {
    if (!res.write(chunk)) await new Promise<void>((r) => ((wake = r), res.once('drain', r)));
  }
  if (!gone) res.end(tail);
}

function discoveryDoc(issuer: string, jwksUri = `${issuer}/jwks`): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: jwksUri,
    response_types_supported: ['code', 'id_token'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    grant_types_supported: ['authorization_code', 'implicit'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'none'],
  };
}

/** GETs `path` on the app every 50 ms until `done` settles; every answer must be 200. */
async function keepsAnswering(app: TestApp, path: string, done: Promise<unknown>, key?: string): Promise<number> {
  let settled = false;
  done.then(
    () => (settled = true),
    () => (settled = true),
  );
  let answers = 0;
  do {
    const r = await fetch(app.url + path, { headers: key ? { authorization: basic(key) } : {} });
    await r.arrayBuffer();
    assert.equal(r.status, 200, `${path} answers while an IdP misbehaves`);
    answers++;
    if (!settled) await sleep(50);
  } while (!settled);
  return answers;
}

// ---------------------------------------------------------------------------

describe('address policy (unit: addresses tests must never connect to)', () => {
  test('loopback, private, link-local, CGNAT, multicast, unspecified, reserved, mapped and tunnelled forms are refused', () => {
    const blocked = [
      '127.0.0.1', '127.255.255.254', '0.0.0.0', '0.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1',
      '169.254.169.254', '100.64.0.1', '100.127.255.254', '224.0.0.1', '239.255.255.250', '255.255.255.255',
      '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '240.0.0.1', '192.0.0.170',
      '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1', '2001:db8::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::127.0.0.1', '::a00:1',
      '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', '2002:a00:1::1', '2001::1', '[::1]',
      'not-an-ip',
    ];
    for (const a of blocked) assert.ok(blockedAddressReason(a), `${a} must be refused`);
    const allowed = ['8.8.8.8', '1.1.1.1', '20.190.160.1', '2606:4700:4700::1111', '2a00:1450:4001::200e', '64:ff9b::808:808', '::ffff:8.8.8.8'];
    for (const a of allowed) assert.equal(blockedAddressReason(a), null, `${a} is public`);
  });

  test('names resolving to a private address, or to a mix, are refused before any connection', async () => {
    const answers: Record<string, string[]> = {
      'intranet.example': ['10.0.0.1'],
      'metadata.example': ['169.254.169.254'],
      'cgnat.example': ['100.64.0.1'],
      'mapped.example': ['::ffff:127.0.0.1'],
      'ula.example': ['fd00::1'],
      // A public answer next to a private one is refused as a whole.
      'mixed.example': ['93.184.215.14', '10.1.2.3'],
    };
    const fetcher = new IdpFetcher({ allowPrivateAddresses: false, timeoutMs: 1000, resolve: async (h) => answers[h] ?? [] });
    try {
      for (const host of Object.keys(answers)) {
        await assert.rejects(fetcher.pinnedAddress(host), AddressNotAllowedError, host);
      }
      await assert.rejects(fetcher.pinnedAddress('[fe80::1]'), AddressNotAllowedError);
      // The address checked is the address connected to (one resolution per connection).
      const pinned = new IdpFetcher({ allowPrivateAddresses: false, timeoutMs: 1000, resolve: async () => ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'] });
      assert.equal(await pinned.pinnedAddress('idp.example'), '93.184.215.14');
      await pinned.close();
    } finally {
      await fetcher.close();
    }
  });

  test("the operator's allowed networks (TRACKGATE_SSO_ALLOWED_NETWORKS) let an IdP inside the network through, nothing else", async () => {
    const onPrem = new IdpFetcher({ allowPrivateAddresses: false, allowedNetworks: ['10.20.0.0/16', 'fd00:1::/64'], timeoutMs: 1000, resolve: async (h) => (h === 'keycloak.corp.example' ? ['10.20.1.5'] : h === 'other.corp.example' ? ['10.30.1.5'] : ['fd00:1::5']) });
    try {
      assert.equal(await onPrem.pinnedAddress('keycloak.corp.example'), '10.20.1.5');
      assert.equal(await onPrem.pinnedAddress('v6.corp.example'), 'fd00:1::5');
      await assert.rejects(onPrem.pinnedAddress('other.corp.example'), AddressNotAllowedError);
      await assert.rejects(onPrem.pinnedAddress('169.254.169.254'), AddressNotAllowedError);
      await assert.rejects(onPrem.pinnedAddress('127.0.0.1'), AddressNotAllowedError);
    } finally {
      await onPrem.close();
    }
  });
});

describe('outbound fetches refuse loopback before connecting (fetcher, JWKS, token endpoint)', () => {
  let v4: Listener;
  const strict = new IdpFetcher({ allowPrivateAddresses: false, timeoutMs: 1000 });
  before(async () => {
    v4 = (await countingListener('127.0.0.1'))!;
  });
  after(async () => {
    await strict.close();
    await v4.close();
  });

  test('JWKS at login time: refused, no connection, an OidcLoginError naming the keys', async () => {
    const registry = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 1000, fetcher: strict });
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ nonce: 'n' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuer('https://idp.example').setAudience('c').setSubject('s').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]']) {
      await assert.rejects(
        verifyIdToken(token, registry.get(`https://${host}:${v4.port}/jwks`), { issuer: 'https://idp.example', templated: false, allowedTenantIds: [], clientId: 'c', nonce: 'n', algorithms: ['RS256'], clockToleranceSeconds: 30 }),
        (err: unknown) => err instanceof OidcLoginError && err.code === 'jwks_unreachable' && /signing keys \(jwks_uri\) could not be reached/.test(err.message),
      );
    }
    assert.equal(v4.connections(), 0);
  });

  test('token endpoint at login time: refused, no connection', async () => {
    const metadata = { ...discoveryDoc('https://idp.example'), token_endpoint: `https://127.0.0.1:${v4.port}/token` } as never;
    const params = new URLSearchParams({ code: 'c', state: 's' });
    await assert.rejects(
      exchangeCode({ metadata, clientId: 'c', flow: 'code', responseMode: 'form_post', scopes: ['openid'], redirectUri: 'https://gw.example/login/callback', allowHttp: false, fetcher: strict }, params, 's', 'v'.repeat(43), 1000),
      (err: unknown) => err instanceof OidcLoginError && err.code === 'token_endpoint_unreachable' && /could not be reached/.test(err.message),
    );
    assert.equal(v4.connections(), 0);
  });

  test('a token endpoint the discovery document points inward is judged at save time, without connecting', async () => {
    await assert.rejects(strict.checkAddress('token', `https://127.0.0.1:${v4.port}/token`), (e: unknown) => e instanceof IdpFetchError && e.problem === 'unreachable' && /token endpoint could not be reached/.test(e.message));
    const intranet = new IdpFetcher({ allowPrivateAddresses: false, timeoutMs: 1000, resolve: async () => ['10.20.30.40'] });
    await assert.rejects(intranet.checkAddress('token', 'https://sso.corp.example/token'), IdpFetchError);
    await intranet.close();
    assert.equal(v4.connections(), 0);
  });

  test('http:// is refused outside development mode even if a caller skipped the URL check', async () => {
    await assert.rejects(strict.fetch('discovery', `http://127.0.0.1:${v4.port}/.well-known/openid-configuration`), (e: unknown) => e instanceof IdpFetchError && e.problem === 'unreachable');
    assert.equal(v4.connections(), 0);
  });
});

describe('JWKS held in memory are bounded across key sets', () => {
  test('many large key sets: the least recently used are dropped past the byte budget', async () => {
    const idp = await startHostileIdp();
    const fetcher = new IdpFetcher({ allowPrivateAddresses: true, timeoutMs: 2000 });
    const registry = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 2000, fetcher, maxBytes: 1 * MB });
    try {
      const { publicKey } = await generateKeyPair('RS256', { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
      for (let i = 0; i < 6; i++) {
        // 400 KB each: under the 512 KB limit of one answer, 2.4 MB in all.
        idp.route(`/set${i}/jwks`, (_req, res) => streamHugeJson(res, { keys: [jwk] }, 400 * 1024));
        const key = await registry.get(`${idp.origin}/set${i}/jwks`)({ alg: 'RS256', kid: 'k1' }, { payload: '', signature: '' } as never);
        assert.ok(key, `set ${i} resolves its key`);
        assert.ok(registry.cachedBytes <= 1 * MB, `held ${registry.cachedBytes} bytes after ${i + 1} sets`);
      }
      assert.ok(registry.cachedBytes > 400 * 1024, 'the most recent sets are kept');
    } finally {
      await fetcher.close();
      await idp.close();
    }
  });
});

for (const dialect of dialects()) {
  describe(`SSRF through the issuer URL: saving a connection (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let v4: Listener;
    let v6: Listener | null;
    let closedPort: number;
    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: false, publicUrl: 'https://gw.example.com', ssoHttpTimeoutMs: 2000 });
      ({ org, adminKey } = await app.bootstrap());
      v4 = (await countingListener('127.0.0.1'))!;
      v6 = await countingListener('::1');
      closedPort = await freePort();
    });
    after(async () => {
      await v4.close();
      await v6?.close();
      await app.close();
    });

    test('loopback in every spelling answers one generic 422, open port or closed, and nothing connects', async () => {
      const issuers = [
        `https://127.0.0.1:${v4.port}/`,
        `https://127.0.0.1:${closedPort}/`,
        `https://127.1:${v4.port}/`,
        `https://2130706433:${v4.port}/`,
        `https://0x7f.0.0.1:${v4.port}/`,
        `https://0.0.0.0:${v4.port}/`,
        `https://[::ffff:127.0.0.1]:${v4.port}/`,
        `https://[::ffff:7f00:1]:${v4.port}/`,
        `https://[::1]:${v6?.port ?? closedPort}/`,
        `https://[::]:${v6?.port ?? closedPort}/`,
        ...loopbackHostNames().flatMap((h) => [`https://${h}:${v4.port}/`, `https://${h}:${closedPort}/`]),
        `https://localhost.:${v4.port}/`,
      ];
      const messages = new Set<string>();
      for (const issuer of issuers) {
        const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer, client_id: 'x' } });
        assert.equal(r.status, 422, `${issuer}: ${r.text}`);
        const p = r.body.error.problems[0];
        assert.equal(p.field, 'issuer');
        assert.equal(p.code, 'issuer_unreachable', `${issuer}: ${p.message}`);
        // The URL the admin typed aside, one sentence for every case: nothing tells open from closed, name from address.
        messages.add(p.message.replace(/\([^)]*\.well-known\/openid-configuration\)/, '(URL)'));
        assert.doesNotMatch(p.message, /refused|ECONN|loopback|private|certificate|TLS|resolve/i, p.message);
      }
      assert.equal(messages.size, 1, [...messages].join('\n'));
      assert.match([...messages][0]!, /^the issuer could not be reached/);
      assert.equal(v4.connections(), 0, 'no connection reached the IPv4 loopback listener');
      assert.equal(v6?.connections() ?? 0, 0, 'no connection reached the IPv6 loopback listener');
      const list = await app.request('GET', `/gateway/v1/orgs/${org}/sso`, { key: adminKey });
      assert.equal(list.body.connections.length, 0);
      // The admin gets the generic sentence; the operator's log has the reason.
      await sleep(100);
      assert.match(readFileSync(app.logFile, 'utf8'), /loopback address/);
    });

    test("an operator's allowed network is reached (and only it): TRACKGATE_SSO_ALLOWED_NETWORKS", async () => {
      const other = await startApp(dialect, { allowHttpIssuers: false, ssoAllowedNetworks: '127.0.0.1/32', publicUrl: 'https://gw.example.com', ssoHttpTimeoutMs: 2000 });
      try {
        const o = await other.bootstrap();
        const before = v4.connections();
        // The listener is no TLS server: the connection is made, then fails, with the same generic words.
        const r = await other.request('POST', `/gateway/v1/orgs/${o.org}/sso`, { key: o.adminKey, body: { issuer: `https://127.0.0.1:${v4.port}/`, client_id: 'x' } });
        assert.equal(r.status, 422, r.text);
        assert.match(r.body.error.problems[0].message, /^the issuer could not be reached/);
        assert.equal(v4.connections(), before + 1, 'the allowed network was connected to');
        const v6r = await other.request('POST', `/gateway/v1/orgs/${o.org}/sso`, { key: o.adminKey, body: { issuer: `https://[::1]:${v6?.port ?? closedPort}/`, client_id: 'x' } });
        assert.equal(v6r.status, 422);
        assert.equal(v6?.connections() ?? 0, 0, '::1 is outside the allowed network');
      } finally {
        await other.close();
      }
      assert.throws(() => loadConfig({ env: { TRACKGATE_SSO_ALLOWED_NETWORKS: '10.0.0.0/8,not-a-cidr' }, configDir: '/nonexistent' }), /CIDR/);
      assert.deepEqual(loadConfig({ env: { TRACKGATE_SSO_ALLOWED_NETWORKS: '10.0.0.0/8, fd00::/8' }, configDir: '/nonexistent' }).ssoAllowedNetworks, ['10.0.0.0/8', 'fd00::/8']);
    });

    test('an open and a closed loopback port take the same path (no timing oracle from connecting)', async () => {
      const time = async (port: number) => {
        const t0 = performance.now();
        const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: `https://127.0.0.1:${port}/`, client_id: 'x' } });
        assert.equal(r.status, 422);
        return performance.now() - t0;
      };
      // Neither is connected to, so both answer at once.
      const before = v4.connections();
      assert.ok((await time(v4.port)) < 1000);
      assert.ok((await time(closedPort)) < 1000);
      assert.equal(v4.connections(), before);
    });
  });

  describe(`oversized, slow and mistyped IdP answers (${dialect})`, () => {
    let app: TestApp;
    let idp: HostileIdp;
    let org: string;
    let adminKey: string;
    let memberKey: string;
    const url = () => `/gateway/v1/orgs/${org}/sso`;
    const save = (issuer: string, extra: Record<string, unknown> = {}) => app.request('POST', url(), { key: adminKey, body: { issuer, client_id: 'x', ...extra } });

    before(async () => {
      const port = await freePort();
      // Development mode: the hostile IdP is on 127.0.0.1.
      app = await startApp(dialect, { port, allowHttpIssuers: true, publicUrl: `http://127.0.0.1:${port}`, ssoHttpTimeoutMs: 1000, ssoJwksCooldownSeconds: 0 });
      ({ org, adminKey } = await app.bootstrap());
      ({ key: memberKey } = await app.createUser({ org, username: `m-${dialect}-${Date.now().toString(36)}` }));
      idp = await startHostileIdp();
    });
    after(async () => {
      await idp.close();
      await app.close();
    });

    test('a 100 MB chunked discovery document (no Content-Length): 422 naming the limit, reading stops early, the gateway keeps answering', async () => {
      const issuer = `${idp.origin}/huge`;
      idp.route('/huge/.well-known/openid-configuration', (_req, res) => streamHugeJson(res, discoveryDoc(issuer), 100 * MB));
      const rssBefore = process.memoryUsage().rss;
      const saving = save(issuer);
      const [r, healthz, verify] = await Promise.all([saving, keepsAnswering(app, '/healthz', saving), keepsAnswering(app, '/auth/verify', saving, memberKey)]);
      assert.equal(r.status, 422, r.text);
      const p = r.body.error.problems[0];
      assert.equal(p.code, 'discovery_too_large');
      assert.match(p.message, /larger than 256 KB/);
      const sent = idp.stats('/huge/.well-known/openid-configuration').bytes;
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      console.log(`# huge discovery: the IdP handed ${(sent / MB).toFixed(2)} MB of 100 MB to its socket; RSS grew ${(rssGrowth / MB).toFixed(1)} MB; /healthz answered ${healthz}x and /auth/verify ${verify}x meanwhile`);
      assert.ok(sent < 16 * MB, `reading stopped early (the IdP wrote ${sent} bytes)`);
      assert.ok(rssGrowth < 64 * MB, `memory did not balloon (${rssGrowth} bytes)`);
      assert.equal((await app.request('GET', '/healthz')).status, 200);
      assert.equal((await app.request('GET', '/auth/verify', { key: memberKey })).status, 200);
      assert.equal((await app.request('GET', url(), { key: adminKey })).body.connections.length, 0);
    });

    test('a declared Content-Length past the limit is refused before reading the body', async () => {
      const issuer = `${idp.origin}/declared`;
      idp.route('/declared/.well-known/openid-configuration', (_req, res) => streamHugeJson(res, discoveryDoc(issuer), 50 * MB, { declare: true }));
      const r = await save(issuer);
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.problems[0].code, 'discovery_too_large');
      assert.match(r.body.error.problems[0].message, /Content-Length/);
      assert.ok(idp.stats('/declared/.well-known/openid-configuration').bytes < 16 * MB);
    });

    test('a gzip bomb (small on the wire, 48 MB decoded) is stopped at the decoded limit', async () => {
      const issuer = `${idp.origin}/bomb`;
      const json = Buffer.concat([Buffer.from(JSON.stringify(discoveryDoc(issuer)).slice(0, -1) + ',"padding":"'), Buffer.alloc(48 * MB, 'a'), Buffer.from('"}')]);
      const bomb = gzipSync(json, { level: 9 });
      assert.ok(bomb.length < 1 * MB);
      idp.route('/bomb/.well-known/openid-configuration', (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': bomb.length }).end(bomb);
      });
      const r = await save(issuer);
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.problems[0].code, 'discovery_too_large');
    });

    test('a huge JWKS: 422 naming the keys and their 512 KB limit', async () => {
      const issuer = `${idp.origin}/bigkeys`;
      idp.route('/bigkeys/.well-known/openid-configuration', (_req, res) => sendJson(res, discoveryDoc(issuer)));
      idp.route('/bigkeys/jwks', (_req, res) => streamHugeJson(res, { keys: [] }, 100 * MB));
      const saving = save(issuer, { response_mode: 'form_post' });
      const [r] = await Promise.all([saving, keepsAnswering(app, '/healthz', saving)]);
      assert.equal(r.status, 422, r.text);
      const p = r.body.error.problems.find((x: { code: string }) => x.code === 'jwks_too_large');
      assert.ok(p, r.text);
      assert.match(p.message, /signing keys \(jwks_uri\).*larger than 512 KB/);
      assert.ok(idp.stats('/bigkeys/jwks').bytes < 16 * MB);
    });

    test('an IdP that never answers, or answers a byte at a time: 422 naming the timeout, the gateway answering meanwhile', async () => {
      const silent = `${idp.origin}/silent`;
      idp.route('/silent/.well-known/openid-configuration', () => {
        /* never answers */
      });
      const trickle = `${idp.origin}/trickle`;
      idp.route('/trickle/.well-known/openid-configuration', async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        let gone = false;
        res.on('close', () => (gone = true));
        res.write('{"issuer":"');
        // Each byte well within any per-read idle timeout; the whole answer never within the deadline.
        for (let i = 0; i < 100 && !gone; i++) {
          res.write('a');
          await sleep(100);
        }
        if (!gone) res.end('"}');
      });
      for (const issuer of [silent, trickle]) {
        const t0 = performance.now();
        const saving = save(issuer);
        const [r] = await Promise.all([saving, keepsAnswering(app, '/healthz', saving)]);
        const took = performance.now() - t0;
        assert.equal(r.status, 422, r.text);
        assert.equal(r.body.error.problems[0].code, 'issuer_timeout', r.text);
        assert.match(r.body.error.problems[0].message, /did not answer within 1 s/);
        assert.ok(took < 4000, `gave up after the deadline (${took} ms)`);
      }
    });

    test('a discovery document served as HTML: 422 naming the content type', async () => {
      const issuer = `${idp.origin}/html`;
      idp.route('/html/.well-known/openid-configuration', (_req, res) => sendJson(res, discoveryDoc(issuer), 'text/html'));
      const r = await save(issuer);
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.problems[0].code, 'discovery_not_json');
      assert.match(r.body.error.problems[0].message, /content type "text\/html", not JSON/);
    });

    test('an answer that is not a discovery document: 422 saying what is wrong with it', async () => {
      const cases: Array<[string, string, string, RegExp]> = [
        ['broken', '{"issuer": ', 'discovery_not_json', /did not answer with JSON/],
        ['array', '[1, 2]', 'discovery_invalid', /not a JSON object/],
        ['noissuer', JSON.stringify({ authorization_endpoint: 'https://idp.example/authorize' }), 'discovery_invalid', /has no "issuer"/],
        ['nourl', JSON.stringify({ issuer: 'not a url' }), 'issuer_mismatch', /issuer is not a URL/],
      ];
      for (const [name, body, code, message] of cases) {
        idp.route(`/${name}/.well-known/openid-configuration`, (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        });
        const r = await save(`${idp.origin}/${name}`);
        assert.equal(r.status, 422, r.text);
        assert.equal(r.body.error.problems[0].code, code, `${name}: ${r.text}`);
        assert.match(r.body.error.problems[0].message, message, name);
      }
    });

    test('redirects are not followed (discovery and JWKS)', async () => {
      const issuer = `${idp.origin}/redir`;
      idp.route('/redir/.well-known/openid-configuration', (_req, res) => {
        res.writeHead(302, { location: `${idp.origin}/elsewhere` }).end();
      });
      const r = await save(issuer);
      assert.equal(r.status, 422, r.text);
      assert.match(r.body.error.problems[0].message, /redirect/);
      const issuer2 = `${idp.origin}/redirkeys`;
      idp.route('/redirkeys/.well-known/openid-configuration', (_req, res) => sendJson(res, discoveryDoc(issuer2)));
      idp.route('/redirkeys/jwks', (_req, res) => {
        res.writeHead(307, { location: `${idp.origin}/elsewhere` }).end();
      });
      const r2 = await save(issuer2, { response_mode: 'form_post' });
      assert.equal(r2.status, 422, r2.text);
      assert.ok(r2.body.error.problems.some((p: { code: string }) => p.code === 'jwks_unreachable'), r2.text);
      assert.equal(idp.stats('/elsewhere').requests, 0, 'the redirect target was never asked');
    });

    describe('at login time: the JWKS and the token endpoint are bounded too', () => {
      let issuer: string;
      let key: { privateKey: CryptoKey; jwk: JWK };
      let jwksMode: 'ok' | 'huge' = 'ok';
      let tokenMode: 'huge' | 'html' = 'huge';
      let orgImplicit: string;
      let orgCode: string;

      before(async () => {
        issuer = `${idp.origin}/login-idp`;
        const pair = await generateKeyPair('RS256', { extractable: true });
        key = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' } };
        idp.route('/login-idp/.well-known/openid-configuration', (_req, res) => sendJson(res, discoveryDoc(issuer)));
        idp.route('/login-idp/jwks', (_req, res) => (jwksMode === 'ok' ? sendJson(res, { keys: [key.jwk] }) : streamHugeJson(res, { keys: [key.jwk] }, 100 * MB)));
        idp.route('/login-idp/token', (_req, res) => (tokenMode === 'huge' ? streamHugeJson(res, { token_type: 'Bearer', access_token: 'x' }, 100 * MB) : sendJson(res, { id_token: 'x' }, 'text/html')));
        const tag = `${dialect}-${Date.now().toString(36)}`;
        for (const [flow, slugName] of [['implicit', `bounded-imp-${tag}`], ['code', `bounded-code-${tag}`]] as const) {
          const { org: slug, adminKey: key } = await app.bootstrap({ org: slugName });
          const saved = await app.request('POST', `/gateway/v1/orgs/${slug}/sso`, { key, body: { issuer, client_id: 'bounded-client', flow, response_mode: 'form_post', domains: [`${slugName}.test`] } });
          assert.equal(saved.status, 201, saved.text);
          if (flow === 'implicit') orgImplicit = slug;
          else orgCode = slug;
        }
      });

      async function startLogin(browser: Browser, slug: string): Promise<URL> {
        // As from trackgate's own login page (a cross-site link gets a confirmation page first).
        const r = await browser.request('GET', `/login?org=${slug}`, { headers: { 'sec-fetch-site': 'same-origin' } });
        assert.equal(r.status, 303, r.text);
        return new URL(r.location!);
      }

      test('a JWKS grown huge after the connection was saved: the login fails with a page naming it, the gateway is fine', async () => {
        jwksMode = 'huge';
        try {
          const browser = new Browser(app.url);
          const u = await startLogin(browser, orgImplicit);
          const token = await new SignJWT({ nonce: u.searchParams.get('nonce')!, email: 'a@b.test' })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .setIssuer(issuer)
            .setAudience('bounded-client')
            .setSubject('someone')
            .setIssuedAt()
            .setExpirationTime('5m')
            .sign(key.privateKey);
          const before = idp.stats('/login-idp/jwks').bytes;
          const r = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
          assert.equal(r.status, 400, r.text);
          assert.match(r.text, /signing keys \(jwks_uri\) answered with a document larger than 512 KB/);
          assert.ok(idp.stats('/login-idp/jwks').bytes - before < 16 * MB);
          assert.equal((await app.request('GET', '/healthz')).status, 200);
        } finally {
          jwksMode = 'ok';
        }
      });

      test('a huge or mistyped token response: the code-flow login fails with a page naming it', async () => {
        for (const [mode, expected] of [
          ['huge', /token endpoint answered with a document larger than 256 KB/],
          ['html', /token endpoint answered with content type &quot;text\/html&quot;, not JSON|token endpoint answered with content type "text\/html", not JSON/],
        ] as const) {
          tokenMode = mode;
          const browser = new Browser(app.url);
          const u = await startLogin(browser, orgCode);
          assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
          const r = await browser.get(`/login/callback?code=abc&state=${encodeURIComponent(u.searchParams.get('state')!)}`);
          assert.equal(r.status, 400, r.text);
          assert.match(r.text, expected);
        }
        assert.ok(idp.stats('/login-idp/token').bytes < 32 * MB);
        assert.equal((await app.request('GET', '/healthz')).status, 200);
      });
    });
  });
}
