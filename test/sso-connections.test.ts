/**
 * SSO connections API: create/read/update/delete by org admins, discovery
 * problems reported field by field, secrets never returned, the test
 * endpoint, audit events, and http:// issuers only with allowHttpIssuers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startAzureLikeIdp, startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { AzureLikeIdp, OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';

let okta: OktaLikeIdp;
let azure: AzureLikeIdp;
let jose: JoseIdp;
before(async () => {
  okta = await startOktaLikeIdp();
  azure = await startAzureLikeIdp({ tenants: ['aaaaaaaa-1111-4111-8111-111111111111'] });
  jose = await startJoseIdp();
});
after(async () => {
  await Promise.all([okta.close(), azure.close(), jose.close()]);
});

describe('http:// issuers need TRACKGATE_ALLOW_HTTP_ISSUERS', () => {
  test('refused field by field without it', async () => {
    const app = await startApp('sqlite', { allowHttpIssuers: false });
    try {
      const { org, adminKey } = await app.bootstrap();
      const r = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: okta.issuer, client_id: 'x' } });
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.code, 'sso_configuration_invalid');
      assert.equal(r.body.error.problems[0].field, 'issuer');
      assert.match(r.body.error.problems[0].message, /TRACKGATE_ALLOW_HTTP_ISSUERS/);
    } finally {
      await app.close();
    }
  });
});

for (const dialect of dialects()) {
  describe(`SSO connections API (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let memberKey: string;
    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true, publicUrl: 'https://gw.example.com' });
      ({ org, adminKey } = await app.bootstrap());
      ({ key: memberKey } = await app.createUser({ org, username: `member-${dialect}-${Date.now().toString(36)}` }));
      const t = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: `ml-${dialect}-${org}` } });
      assert.equal(t.status, 201, t.text);
    });
    after(() => app.close());
    const url = () => `/gateway/v1/orgs/${org}/sso`;

    test('create → get → list → patch → test → delete, secret never shown, audited', async () => {
      const created = await app.request('POST', url(), {
        key: adminKey,
        body: {
          issuer: okta.issuer,
          client_id: '0oa1example',
          flow: 'code',
          client_secret: 'super-secret-value-123456',
          domains: ['Example-Corp.COM'],
          group_roles: [{ group: 'ML Engineers', team: `ml-${dialect}-${org}`, role: 'member' }],
        },
      });
      assert.equal(created.status, 201, created.text);
      const c = created.body;
      assert.ok(c.id);
      assert.equal(c.callback_uri, 'https://gw.example.com/login/callback');
      assert.equal(c.has_client_secret, true);
      assert.deepEqual(c.domains, ['example-corp.com']);
      assert.deepEqual(c.scopes, ['openid', 'email', 'profile']);
      assert.deepEqual(c.claims, { email: 'email', name: 'name', username: 'preferred_username', groups: 'groups' });
      assert.equal(c.jit, true);
      assert.equal(c.enabled, true);
      assert.equal(c.discovered_issuer, okta.issuer);
      assert.ok(!created.text.includes('super-secret-value'));
      assert.ok(!('client_secret' in c));

      const got = await app.request('GET', `${url()}/${c.id}`, { key: adminKey });
      assert.equal(got.status, 200);
      assert.ok(!got.text.includes('super-secret-value'));
      const list = await app.request('GET', url(), { key: adminKey });
      assert.equal(list.body.connections.length, 1);

      const patched = await app.request('PATCH', `${url()}/${c.id}`, { key: adminKey, body: { client_secret: null, jit: false, scopes: ['email', 'groups'] } });
      assert.equal(patched.status, 200, patched.text);
      assert.equal(patched.body.has_client_secret, false);
      assert.equal(patched.body.jit, false);
      assert.deepEqual(patched.body.scopes, ['openid', 'email', 'groups']);

      const tested = await app.request('POST', `${url()}/${c.id}/test`, { key: adminKey });
      assert.equal(tested.status, 200, tested.text);
      assert.equal(tested.body.ok, true);
      assert.deepEqual(tested.body.signing_algorithms, ['RS256']);

      const audit = await app.request('GET', `/gateway/v1/orgs/${org}/audit`, { key: adminKey });
      const actions = audit.body.events.map((e: any) => e.action);
      for (const a of ['sso.connection.create', 'sso.connection.update', 'sso.connection.test']) assert.ok(actions.includes(a), a);
      assert.ok(!audit.text.includes('super-secret-value'));

      const del = await app.request('DELETE', `${url()}/${c.id}`, { key: adminKey });
      assert.equal(del.status, 204);
      assert.equal((await app.request('GET', `${url()}/${c.id}`, { key: adminKey })).status, 404);
    });

    test('discovery problems are reported field by field and nothing is saved', async () => {
      jose.setDiscovery({ response_modes_supported: ['query', 'fragment'], jwks_uri: undefined });
      try {
        const r = await app.request('POST', url(), { key: adminKey, body: { issuer: jose.issuer, client_id: 'x', response_mode: 'form_post', group_roles: [{ group: 'g', team: 'no-such-team', role: 'admin' }] } });
        assert.equal(r.status, 422, r.text);
        const problems = r.body.error.problems as Array<{ field: string; code: string }>;
        assert.deepEqual(problems.map((p) => p.code).sort(), ['jwks_uri_missing', 'response_mode_not_supported', 'team_not_found']);
        assert.match(r.body.error.message, /response_mode/);
      } finally {
        jose.setDiscovery({ response_modes_supported: undefined, jwks_uri: `${jose.issuer}/jwks` });
      }
      const mismatch = await app.request('POST', url(), { key: adminKey, body: { issuer: okta.issuer + '/', client_id: 'x' } });
      assert.equal(mismatch.status, 201, 'a trailing slash is not a mismatch');
      await app.request('DELETE', `${url()}/${mismatch.body.id}`, { key: adminKey });
      const unreachable = await app.request('POST', url(), { key: adminKey, body: { issuer: 'http://127.0.0.1:1/nothing', client_id: 'x' } });
      assert.equal(unreachable.status, 422);
      assert.equal(unreachable.body.error.problems[0].code, 'issuer_unreachable');
      const bad = await app.request('POST', url(), { key: adminKey, body: { issuer: 'not a url', client_id: '' } });
      assert.equal(bad.status, 400);
      const list = await app.request('GET', url(), { key: adminKey });
      assert.equal(list.body.connections.length, 0);
    });

    test('Azure AD multi-tenant needs allowed_tenant_ids', async () => {
      const r = await app.request('POST', url(), { key: adminKey, body: { issuer: azure.organizationsIssuer, client_id: 'azure-app' } });
      assert.equal(r.status, 422);
      assert.equal(r.body.error.problems[0].field, 'allowed_tenant_ids');
      assert.match(r.body.error.problems[0].message, /Tenant ID/);
      const ok = await app.request('POST', url(), { key: adminKey, body: { issuer: azure.organizationsIssuer, client_id: 'azure-app', allowed_tenant_ids: ['AAAAAAAA-1111-4111-8111-111111111111'] } });
      assert.equal(ok.status, 201, ok.text);
      assert.deepEqual(ok.body.allowed_tenant_ids, ['aaaaaaaa-1111-4111-8111-111111111111']);
      assert.equal(ok.body.discovered_issuer, azure.issuerTemplate);
      await app.request('DELETE', `${url()}/${ok.body.id}`, { key: adminKey });
    });

    test('an email domain is served by one connection only', async () => {
      const a = await app.request('POST', url(), { key: adminKey, body: { issuer: okta.issuer, client_id: 'a', domains: [`one-${dialect}.example`] } });
      assert.equal(a.status, 201, a.text);
      const b = await app.request('POST', url(), { key: adminKey, body: { issuer: okta.issuer, client_id: 'b', domains: [`one-${dialect}.example`] } });
      assert.equal(b.status, 422);
      assert.equal(b.body.error.problems[0].code, 'domain_taken');
      await app.request('DELETE', `${url()}/${a.body.id}`, { key: adminKey });
    });

    test('org admins only; other organizations do not see them', async () => {
      const r = await app.request('GET', url(), { key: memberKey });
      assert.equal(r.status, 403);
      const w = await app.request('POST', url(), { key: memberKey, body: { issuer: okta.issuer, client_id: 'x' } });
      assert.equal(w.status, 403);
      assert.equal((await app.request('GET', url())).status, 401);
      const other = await app.bootstrap();
      // Bootstrap admins are instance operators; an ordinary admin of the other organization:
      const otherAdmin = await app.createUser({ org: other.org, username: `${other.org}-admin2`, role: 'admin' });
      const created = await app.request('POST', url(), { key: adminKey, body: { issuer: okta.issuer, client_id: 'mine' } });
      assert.equal(created.status, 201);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${other.org}/sso/${created.body.id}`, { key: otherAdmin.key })).status, 404);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso/${created.body.id}`, { key: otherAdmin.key })).status, 404);
    });

    test('the OpenAPI document lists the SSO endpoints', async () => {
      const doc = await app.request('GET', '/gateway/v1/openapi.json');
      for (const p of ['/gateway/v1/orgs/{org}/sso', '/gateway/v1/orgs/{org}/sso/{id}', '/gateway/v1/orgs/{org}/sso/{id}/test', '/gateway/v1/session']) assert.ok(doc.body.paths[p], p);
      assert.ok(doc.body.paths['/gateway/v1/orgs/{org}/sso'].post.responses['422']);
    });
  });
}
