/**
 * The OIDC protocol layer (src/sso/oidc) against real and hand-made IdPs:
 * discovery problems, authorization URLs, ID token validation, JWKS rotation
 * and re-fetch rate limiting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { discover } from '../src/sso/oidc/discovery.ts';
import { buildAuthorizationRequest, checkResponseIssuer, exchangeCode } from '../src/sso/oidc/client.ts';
import type { RelyingParty } from '../src/sso/oidc/client.ts';
import { verifyIdToken } from '../src/sso/oidc/id-token.ts';
import type { IdTokenExpectations } from '../src/sso/oidc/id-token.ts';
import { IdpFetcher } from '../src/sso/oidc/idp-fetch.ts';
import { JwksRegistry } from '../src/sso/oidc/jwks.ts';
import { OidcLoginError } from '../src/sso/oidc/problems.ts';
import { enteredIssuerMatchesTemplate, urlProblem } from '../src/sso/oidc/issuer.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import { startAzureLikeIdp, startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { AzureLikeIdp, OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';

const CALLBACK = 'http://127.0.0.1:9/login/callback';
const TENANT_A = '11111111-1111-4111-8111-111111111111';
const TENANT_B = '22222222-2222-4222-8222-222222222222';
const TENANT_EVIL = '99999999-9999-4999-8999-999999999999';
const policy = { allowHttpIssuers: true };
/** The IdPs of these tests listen on 127.0.0.1: the development-mode address policy. */
const idpFetcher = new IdpFetcher({ allowPrivateAddresses: true, timeoutMs: 2000 });
after(() => idpFetcher.close());

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function expectLoginError(p: Promise<unknown>, code: string, messagePart?: RegExp): Promise<OidcLoginError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OidcLoginError, `expected OidcLoginError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (messagePart) assert.match(err.message, messagePart);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

function fragmentParams(location: string): URLSearchParams {
  return new URLSearchParams(new URL(location).hash.slice(1));
}

describe('issuer URL policy', () => {
  test('http only with allowHttpIssuers and only on loopback', () => {
    assert.match(urlProblem('http://127.0.0.1:1/x', { allowHttpIssuers: false }, 'the issuer URL')!, /only https/);
    assert.equal(urlProblem('http://127.0.0.1:1/x', { allowHttpIssuers: true }, 'the issuer URL'), null);
    assert.equal(urlProblem('http://localhost:1/x', { allowHttpIssuers: true }, 'the issuer URL'), null);
    assert.match(urlProblem('http://example.com/x', { allowHttpIssuers: true }, 'the issuer URL')!, /non-loopback/);
    assert.equal(urlProblem('https://example.okta.com', { allowHttpIssuers: false }, 'the issuer URL'), null);
    assert.match(urlProblem('ftp://x', { allowHttpIssuers: true }, 'x')!, /https/);
  });
  test('Azure templates', () => {
    const t = 'https://login.microsoftonline.com/{tenantid}/v2.0';
    assert.ok(enteredIssuerMatchesTemplate('https://login.microsoftonline.com/organizations/v2.0', t));
    assert.ok(enteredIssuerMatchesTemplate('https://login.microsoftonline.com/common/v2.0/', t));
    assert.ok(!enteredIssuerMatchesTemplate('https://login.microsoftonline.com/a/b/v2.0', t));
    assert.ok(!enteredIssuerMatchesTemplate('https://evil.example/organizations/v2.0', t));
  });
});

describe('against oidc-provider (Okta-like)', () => {
  let okta: OktaLikeIdp;
  const jwks = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 2000, fetcher: idpFetcher });
  before(async () => {
    okta = await startOktaLikeIdp({
      clients: [
        { client_id: 'spa', kind: 'implicit', redirect_uris: [CALLBACK] },
        { client_id: 'web', kind: 'code', client_secret: 'web-secret-0123456789', redirect_uris: [CALLBACK] },
        { client_id: 'pkce', kind: 'code', redirect_uris: [CALLBACK] },
      ],
      users: [{ sub: 'alice', email: 'alice@acme.test', name: 'Alice', preferred_username: 'alice', groups: ['ml-eng', 'everyone'] }],
    });
  });
  after(() => okta.close());

  async function rpFor(clientId: string, flow: 'implicit' | 'code', responseMode: 'form_post' | 'fragment', secret?: string) {
    const d = await discover({ issuer: okta.issuer, clientId, flow, responseMode, clientSecret: secret }, policy);
    assert.equal(d.ok, true, JSON.stringify(d.problems));
    const rp: RelyingParty = { metadata: d.metadata!, clientId, clientSecret: secret, flow, responseMode, scopes: ['openid', 'email', 'profile', 'groups'], redirectUri: CALLBACK, allowHttp: true };
    return { d, rp };
  }
  const expectations = (d: Awaited<ReturnType<typeof discover>>, clientId: string, nonce: string): IdTokenExpectations => ({
    issuer: d.issuer!,
    templated: false,
    allowedTenantIds: [],
    clientId,
    nonce,
    algorithms: d.signingAlgorithms!,
    clockToleranceSeconds: 30,
  });

  test('discovery of an https-only setting refuses http', async () => {
    const d = await discover({ issuer: okta.issuer, clientId: 'spa', flow: 'implicit', responseMode: 'form_post' }, { allowHttpIssuers: false });
    assert.equal(d.ok, false);
    assert.equal(d.problems[0]!.field, 'issuer');
    assert.match(d.problems[0]!.message, /TRACKGATE_ALLOW_HTTP_ISSUERS/);
  });

  test('discovery problems are reported field by field', async () => {
    const wrong = await discover({ issuer: okta.issuer + 'x', clientId: 'spa', flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.equal(wrong.problems[0]!.code, 'issuer_unreachable');
    assert.match(wrong.problems[0]!.message, /HTTP 404/);
    const down = await discover({ issuer: `http://127.0.0.1:${await closedPort()}/oauth2/default`, clientId: 'spa', flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.equal(down.problems[0]!.code, 'issuer_unreachable');
    // The same words whatever the network said (no port scanner); the detail goes to the log.
    assert.match(down.problems[0]!.message, /could not be reached/);
    const wk = await discover({ issuer: okta.issuer + '/.well-known/openid-configuration', clientId: 'spa', flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.equal(wk.problems[0]!.code, 'issuer_invalid');
  });

  test('implicit + form_post: the IdP posts an ID token that validates, with groups', async () => {
    const { d, rp } = await rpFor('spa', 'implicit', 'form_post');
    const req = await buildAuthorizationRequest(rp);
    const u = new URL(req.url);
    assert.equal(u.searchParams.get('response_type'), 'id_token');
    assert.equal(u.searchParams.get('response_mode'), 'form_post');
    assert.equal(u.searchParams.get('nonce'), req.nonce);
    const answer = await driveIdpLogin(req.url, 'alice');
    assert.equal(answer.kind, 'form_post');
    if (answer.kind !== 'form_post') return;
    assert.equal(answer.action, CALLBACK);
    assert.equal(answer.fields.state, req.state);
    checkResponseIssuer(new URLSearchParams(answer.fields), d.metadata!, []);
    const v = await verifyIdToken(answer.fields.id_token!, jwks.get(d.metadata!.jwks_uri), expectations(d, 'spa', req.nonce));
    assert.equal(v.subject, 'alice');
    assert.deepEqual(v.claims.groups, ['ml-eng', 'everyone']);
    assert.equal(v.claims.email, 'alice@acme.test');
    // The same token with another login attempt's nonce is refused.
    await expectLoginError(verifyIdToken(answer.fields.id_token!, jwks.get(d.metadata!.jwks_uri), expectations(d, 'spa', 'other')), 'nonce_mismatch');
    // ... and for another client ID.
    await expectLoginError(verifyIdToken(answer.fields.id_token!, jwks.get(d.metadata!.jwks_uri), { ...expectations(d, 'spa', req.nonce), clientId: 'web' }), 'audience_mismatch', /audience is not this application's client ID/);
  });

  test('implicit + fragment', async () => {
    const { d, rp } = await rpFor('spa', 'implicit', 'fragment');
    const req = await buildAuthorizationRequest(rp);
    const answer = await driveIdpLogin(req.url, 'alice');
    assert.equal(answer.kind, 'redirect');
    if (answer.kind !== 'redirect') return;
    assert.ok(answer.location.startsWith(CALLBACK + '#'));
    const params = fragmentParams(answer.location);
    assert.equal(params.get('state'), req.state);
    const v = await verifyIdToken(params.get('id_token')!, jwks.get(d.metadata!.jwks_uri), expectations(d, 'spa', req.nonce));
    assert.equal(v.subject, 'alice');
  });

  test('code + PKCE with a client secret, and as a public client', async () => {
    for (const [clientId, secret] of [['web', 'web-secret-0123456789'], ['pkce', undefined]] as const) {
      const { d, rp } = await rpFor(clientId, 'code', 'form_post', secret);
      const req = await buildAuthorizationRequest(rp);
      assert.equal(new URL(req.url).searchParams.get('code_challenge_method'), 'S256');
      const answer = await driveIdpLogin(req.url, 'alice');
      assert.equal(answer.kind, 'redirect');
      if (answer.kind !== 'redirect') return;
      const params = new URL(answer.location).searchParams;
      assert.ok(params.get('code'));
      checkResponseIssuer(params, d.metadata!, []);
      const idToken = await exchangeCode(rp, params, req.state, req.codeVerifier!, 5000);
      const v = await verifyIdToken(idToken, jwks.get(d.metadata!.jwks_uri), expectations(d, clientId, req.nonce));
      assert.equal(v.subject, 'alice');
      assert.deepEqual(v.claims.groups, ['ml-eng', 'everyone']);
      // A code is single-use.
      await expectLoginError(exchangeCode(rp, params, req.state, req.codeVerifier!, 5000), 'token_request_failed', /invalid_grant/);
    }
  });

  test('a wrong PKCE verifier is refused by the IdP', async () => {
    const { rp } = await rpFor('pkce', 'code', 'form_post');
    const req = await buildAuthorizationRequest(rp);
    const answer = await driveIdpLogin(req.url, 'alice');
    if (answer.kind !== 'redirect') return assert.fail('expected redirect');
    await expectLoginError(exchangeCode(rp, new URL(answer.location).searchParams, req.state, 'x'.repeat(43), 5000), 'token_request_failed');
  });

  test('login right after the IdP rotated its signing key', async () => {
    const { d, rp } = await rpFor('spa', 'implicit', 'fragment');
    const registry = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 2000, fetcher: idpFetcher });
    const first = await buildAuthorizationRequest(rp);
    const a1 = await driveIdpLogin(first.url, 'alice');
    if (a1.kind !== 'redirect') return assert.fail();
    await verifyIdToken(fragmentParams(a1.location).get('id_token')!, registry.get(d.metadata!.jwks_uri), expectations(d, 'spa', first.nonce));
    await okta.rotateKeys({ dropOld: true });
    const second = await buildAuthorizationRequest(rp);
    const a2 = await driveIdpLogin(second.url, 'alice');
    if (a2.kind !== 'redirect') return assert.fail();
    const v = await verifyIdToken(fragmentParams(a2.location).get('id_token')!, registry.get(d.metadata!.jwks_uri), expectations(d, 'spa', second.nonce));
    assert.equal(v.subject, 'alice');
  });

});

describe('against an Azure-AD-like oidc-provider', () => {
  let azure: AzureLikeIdp;
  before(async () => {
    azure = await startAzureLikeIdp({ tenants: [TENANT_A, TENANT_B, TENANT_EVIL], clients: [{ client_id: 'azure-spa', kind: 'implicit', redirect_uris: [CALLBACK] }] });
    azure.addUser(TENANT_A, { oid: 'oid-a1', email: 'a1@a.test', groups: ['g1'] });
    azure.addUser(TENANT_EVIL, { oid: 'oid-e1', email: 'e1@evil.test' });
    azure.addUser(TENANT_A, { oid: 'oid-a2', email: 'a2@a.test', extra: { hasgroups: true } });
  });
  after(() => azure.close());

  test('a templated issuer requires an allow-list', async () => {
    const d = await discover({ issuer: azure.organizationsIssuer, clientId: 'azure-spa', flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.equal(d.ok, false);
    assert.deepEqual(d.problems.map((p) => p.field), ['allowed_tenant_ids']);
    const bad = await discover({ issuer: azure.organizationsIssuer, clientId: 'azure-spa', flow: 'implicit', responseMode: 'form_post', allowedTenantIds: ['contoso'] }, policy);
    assert.equal(bad.problems[0]!.code, 'tenant_id_invalid');
  });

  test('tid on the allow-list logs in; another tenant is refused', async () => {
    const d = await discover({ issuer: azure.organizationsIssuer, clientId: 'azure-spa', flow: 'implicit', responseMode: 'form_post', allowedTenantIds: [TENANT_A, TENANT_B] }, policy);
    assert.equal(d.ok, true, JSON.stringify(d.problems));
    assert.equal(d.templated, true);
    const rp: RelyingParty = { metadata: d.metadata!, clientId: 'azure-spa', flow: 'implicit', responseMode: 'form_post', scopes: ['openid', 'email', 'profile', 'groups'], redirectUri: CALLBACK, allowHttp: true };
    const registry = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 2000, fetcher: idpFetcher });
    const exp = (nonce: string): IdTokenExpectations => ({ issuer: d.issuer!, templated: true, allowedTenantIds: [TENANT_A, TENANT_B], clientId: 'azure-spa', nonce, algorithms: ['RS256'], clockToleranceSeconds: 30 });

    azure.setActiveTenant(TENANT_A);
    const req = await buildAuthorizationRequest(rp);
    const ans = await driveIdpLogin(req.url, 'oid-a1-sub');
    if (ans.kind !== 'form_post') return assert.fail(JSON.stringify(ans));
    checkResponseIssuer(new URLSearchParams(ans.fields), d.metadata!, [TENANT_A, TENANT_B]);
    const v = await verifyIdToken(ans.fields.id_token!, registry.get(d.metadata!.jwks_uri), exp(req.nonce));
    assert.equal(v.tenantId, TENANT_A);
    assert.equal(v.claims.oid, 'oid-a1');
    assert.equal(v.issuer, azure.tenantIssuer(TENANT_A));

    azure.setActiveTenant(TENANT_EVIL);
    const req2 = await buildAuthorizationRequest(rp);
    const ans2 = await driveIdpLogin(req2.url, 'oid-e1-sub');
    if (ans2.kind !== 'form_post') return assert.fail();
    assert.throws(() => checkResponseIssuer(new URLSearchParams({ iss: azure.tenantIssuer(TENANT_EVIL), code: 'x' }), d.metadata!, [TENANT_A, TENANT_B]), /another issuer/);
    checkResponseIssuer(new URLSearchParams({ iss: azure.tenantIssuer(TENANT_B), code: 'x' }), d.metadata!, [TENANT_A, TENANT_B]);
    await expectLoginError(verifyIdToken(ans2.fields.id_token!, registry.get(d.metadata!.jwks_uri), exp(req2.nonce)), 'tenant_not_allowed');

    // Overage: hasgroups instead of groups.
    azure.setActiveTenant(TENANT_A);
    const req3 = await buildAuthorizationRequest(rp);
    const ans3 = await driveIdpLogin(req3.url, 'oid-a2-sub');
    if (ans3.kind !== 'form_post') return assert.fail();
    const v3 = await verifyIdToken(ans3.fields.id_token!, registry.get(d.metadata!.jwks_uri), exp(req3.nonce));
    assert.equal(v3.claims.hasgroups, true);
    assert.equal(v3.claims.groups, undefined);
  });
});

describe('against the hand-made jose IdP', () => {
  let idp: JoseIdp;
  let d: Awaited<ReturnType<typeof discover>>;
  let registry: JwksRegistry;
  before(async () => {
    idp = await startJoseIdp();
    d = await discover({ issuer: idp.issuer, clientId: idp.clientId, flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.equal(d.ok, true, JSON.stringify(d.problems));
    registry = new JwksRegistry({ cooldownSeconds: 0, maxAgeSeconds: 600, timeoutMs: 2000, fetcher: idpFetcher });
  });
  after(() => idp.close());
  const exp = (nonce: string): IdTokenExpectations => ({ issuer: idp.issuer, templated: false, allowedTenantIds: [], clientId: idp.clientId, nonce, algorithms: d.signingAlgorithms!, clockToleranceSeconds: 30 });
  const check = (token: string, nonce = 'n-1') => verifyIdToken(token, registry.get(d.metadata!.jwks_uri), exp(nonce));

  test('a good token', async () => {
    const v = await check(await idp.mint('n-1'));
    assert.equal(v.subject, 'jose-user-1');
  });
  const cases: [string, Parameters<JoseIdp['mint']>[1], string, RegExp?][] = [
    ['wrong nonce', { claims: { nonce: 'other' } }, 'nonce_mismatch'],
    ['wrong iss', { claims: { iss: 'http://127.0.0.1:1/other' } }, 'issuer_mismatch', /issuer/],
    ['wrong aud', { claims: { aud: 'someone-else' } }, 'audience_mismatch', /the token's audience is not this application's client ID/],
    ['several audiences without azp', { claims: { aud: ['jose-client', 'other'] } }, 'azp_missing'],
    ['several audiences, azp another app', { claims: { aud: ['jose-client', 'other'], azp: 'other' } }, 'azp_mismatch'],
    ['missing sub', { claims: { sub: undefined } }, 'sub_missing'],
    ['missing iat', { claims: { iat: undefined } }, 'iat_missing'],
    ['iat in the future', { claims: { iat: Math.floor(Date.now() / 1000) + 3600, exp: Math.floor(Date.now() / 1000) + 7200 } }, 'iat_in_future'],
    ['expired', { claims: { iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 120 } }, 'id_token_expired'],
    ['bad signature', { badSignature: true }, 'signature_invalid'],
    ['alg none', { algNone: true }, 'id_token_unsigned'],
    ['HS256 with the public key', { hs256WithPublicKey: true }, 'id_token_alg_not_allowed', /shared-secret/],
    ['signed by a key the IdP does not publish', { kid: 'unknown' }, 'key_not_found'],
  ];
  for (const [name, options, code, msg] of cases) {
    test(`refused: ${name}`, async () => {
      await expectLoginError(check(await idp.mint('n-1', options)), code, msg);
    });
  }
  test('several audiences with azp = client ID is fine', async () => {
    await check(await idp.mint('n-1', { claims: { aud: ['jose-client', 'other'], azp: 'jose-client' } }));
  });
  test('expired within the clock tolerance is fine', async () => {
    await check(await idp.mint('n-1', { claims: { exp: Math.floor(Date.now() / 1000) - 10 } }));
  });
  test('no kid: accepted with one key, refused with several', async () => {
    idp.setSingleKey();
    registry.forget(d.metadata!.jwks_uri);
    await check(await idp.mint('n-1', { noKid: true }));
    await idp.addKey();
    registry.forget(d.metadata!.jwks_uri);
    await expectLoginError(check(await idp.mint('n-1', { noKid: true })), 'kid_missing');
    idp.setSingleKey();
    registry.forget(d.metadata!.jwks_uri);
  });
  test('key rotation: an unknown kid re-fetches the JWKS', async () => {
    await check(await idp.mint('n-1'));
    await idp.rotate();
    await check(await idp.mint('n-1'));
  });
  test('random kids cause at most one JWKS fetch per cooldown', async () => {
    const slow = new JwksRegistry({ cooldownSeconds: 60, maxAgeSeconds: 600, timeoutMs: 2000, fetcher: idpFetcher });
    const before = idp.jwksFetches();
    await verifyIdToken(await idp.mint('n-1'), slow.get(d.metadata!.jwks_uri), exp('n-1'));
    assert.equal(idp.jwksFetches(), before + 1);
    for (let i = 0; i < 20; i++) {
      await expectLoginError(verifyIdToken(await idp.mint('n-1', { randomKid: true }), slow.get(d.metadata!.jwks_uri), exp('n-1')), 'key_not_found');
    }
    assert.equal(idp.jwksFetches(), before + 1);
  });
  test('discovery: missing jwks_uri, unsupported mode and flow, HMAC-only algorithms', async () => {
    idp.setDiscovery({ jwks_uri: undefined, response_modes_supported: ['query', 'fragment'], id_token_signing_alg_values_supported: ['HS256'] });
    const r = await discover({ issuer: idp.issuer, clientId: 'x', flow: 'implicit', responseMode: 'form_post' }, policy);
    assert.deepEqual(r.problems.map((p) => p.code).sort(), ['jwks_uri_missing', 'no_asymmetric_algorithm', 'response_mode_not_supported']);
    idp.setDiscovery({ jwks_uri: `${idp.issuer}/jwks`, response_types_supported: ['code'], id_token_signing_alg_values_supported: ['RS256'] });
    const r2 = await discover({ issuer: idp.issuer, clientId: 'x', flow: 'implicit', responseMode: 'fragment' }, policy);
    assert.deepEqual(r2.problems.map((p) => p.field), ['flow']);
    idp.setDiscovery({ issuer: 'http://127.0.0.1:1/elsewhere', response_types_supported: ['code', 'id_token'] });
    const r3 = await discover({ issuer: idp.issuer, clientId: 'x', flow: 'implicit', responseMode: 'fragment' }, policy);
    assert.equal(r3.problems[0]!.code, 'issuer_mismatch');
    assert.match(r3.problems[0]!.message, /elsewhere/);
    idp.setDiscovery({ issuer: idp.issuer, response_modes_supported: undefined });
  });
});
