/**
 * The admin finishes SSO alone (issue 18): a connection edited through the API and the /admin page (every
 * discovery problem beside its field, nothing saved until they are fixed), the guided setup per IdP, and the
 * warnings that say why group rules may do nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import { startOktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { OktaLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { decodeHtml, signIn, textOf, WebBrowser } from './support/web.ts';
import { freePort } from './support/net.ts';
import { groupWarnings } from '../src/sso/setup-advice.ts';

let okta: OktaLikeIdp;
before(async () => {
  okta = await startOktaLikeIdp();
});
after(() => okta.close());

test('group warnings: the groups scope, the IdP\'s groups claim, groups the IdP never sends', () => {
  const rules = [{ group: 'ML Engineers', team: 'ml', role: 'member' as const }];
  assert.deepEqual(groupWarnings({ issuer: 'https://idp.example.com', scopes: ['openid', 'groups'], groupRules: rules, groupsClaim: 'groups' }), []);
  assert.deepEqual(groupWarnings({ issuer: 'https://idp.example.com', scopes: ['openid'], groupRules: [], groupsClaim: 'groups' }), []);
  assert.deepEqual(groupWarnings({ issuer: 'https://idp.example.com', scopes: ['openid'], groupRules: rules, groupsClaim: 'groups' }).map((w) => w.code), ['groups_scope_missing']);
  assert.deepEqual(groupWarnings({ issuer: 'https://acme.okta.com/oauth2/default', scopes: ['openid'], groupRules: rules, groupsClaim: 'groups' }).map((w) => w.code), ['groups_scope_missing', 'groups_claim_not_configured']);
  assert.deepEqual(groupWarnings({ issuer: 'https://login.microsoftonline.com/x/v2.0', scopes: ['openid'], groupRules: rules, groupsClaim: 'groups' }).map((w) => w.code), ['groups_claim_not_configured', 'group_not_object_id']);
  assert.deepEqual(groupWarnings({ issuer: 'https://accounts.google.com', scopes: ['openid', 'groups'], groupRules: rules, groupsClaim: 'groups' }).map((w) => w.code), ['groups_not_sent']);
});

for (const dialect of dialects()) {
  describe(`SSO setup (${dialect})`, () => {
    let app: TestApp;
    let org = '';
    let adminKey = '';
    let adminEmail = '';
    let callback = '';
    const team = `ml-${dialect}`;
    const clientId = `setup-spa-${dialect}`;

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true });
      callback = `http://127.0.0.1:${port}/login/callback`;
      const b = await app.bootstrap({ org: `setup-${dialect}`, plan: 'enterprise' });
      org = b.org;
      adminKey = b.adminKey;
      adminEmail = `admin@${org}.example`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      await okta.setClients([{ client_id: clientId, kind: 'implicit', redirect_uris: [callback] }]);
    });
    after(() => app.close());

    test('edit through the API: discovery reruns, problems field by field, nothing saved; warnings when group rules cannot work', async () => {
      const created = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: okta.issuer, client_id: clientId, domains: [`api-${dialect}.test`] } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      assert.deepEqual(created.body.warnings, []);
      const bad = await app.request('PATCH', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey, body: { issuer: `${okta.origin}/not-an-issuer` } });
      assert.equal(bad.status, 422);
      assert.equal(bad.body.error.code, 'sso_configuration_invalid');
      assert.ok(bad.body.error.problems.some((p: { field: string }) => p.field === 'issuer'));
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey })).body.issuer, okta.issuer, 'nothing saved');
      const ok = await app.request('PATCH', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey, body: { scopes: ['openid', 'email'], group_roles: [{ group: 'Engineers', team, role: 'member' }] } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.warnings.map((w: { code: string }) => w.code), ['groups_scope_missing']);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey })).status, 204);
    });

    test('the page: guided setup per IdP, then edit a connection (a wrong issuer\'s problems beside the field; blank secret keeps it)', async () => {
      const admin = await signIn(app, adminEmail);
      const chooser = await admin.get('/admin');
      assert.equal(chooser.status, 200);
      for (const p of ['okta', 'azure', 'google', 'oidc']) assert.ok(chooser.text.includes(`/admin?provider=${p}#sso-setup`), p);
      const csrf = WebBrowser.csrf(chooser.text);

      // Each IdP's steps and the fields it needs, the callback URI with a Copy button.
      const oktaPage = await admin.get('/admin?provider=okta');
      assert.ok(oktaPage.text.includes(`<code id="sso-callback-uri">${callback}</code>`));
      assert.ok(oktaPage.text.includes('data-copy="sso-callback-uri"'));
      assert.match(textOf(oktaPage.text), /Authorization Servers/);
      assert.ok(oktaPage.text.includes('value="openid email profile groups"'), 'Okta asks for groups');
      const azure = await admin.get('/admin?provider=azure');
      assert.ok(azure.text.includes('name="tenant_id"') && azure.text.includes('name="multitenant"'));
      assert.ok(!azure.text.includes('name="issuer"'), 'the issuer is made from the tenant');
      const google = await admin.get('/admin?provider=google');
      assert.match(textOf(google.text), /Google does not offer the implicit flow for new clients/);
      assert.ok(google.text.includes('<input type="hidden" name="flow" value="code">'));
      assert.ok(!google.text.includes('name="group_roles"'));

      // Azure without a tenant: said beside the field, the form kept.
      const noTenant = await admin.post('/admin/sso', { csrf_token: csrf, provider: 'azure', tenant_id: '', client_id: 'x', flow: 'implicit', response_mode: 'form_post' });
      assert.equal(noTenant.status, 400);
      assert.match(noTenant.text, /<span class="field-error" role="alert">the Directory \(tenant\) ID/);

      // A connection from the guided form (Okta), without the groups scope: saved, with the warning.
      const made = await admin.post('/admin/sso', { csrf_token: csrf, provider: 'okta', issuer: okta.issuer, client_id: clientId, flow: 'implicit', response_mode: 'form_post', scopes: 'openid email profile', domains: `page-${dialect}.test`, group_roles: `Engineers,${team},member`, jit: 'on', enabled: 'on' });
      assert.equal(made.status, 303, made.text.slice(0, 800));
      const list = (await app.request('GET', `/gateway/v1/orgs/${org}/sso`, { key: adminKey })).body.connections;
      const conn = list.find((c: { domains: string[] }) => c.domains.includes(`page-${dialect}.test`));
      assert.ok(conn);
      const shown = await admin.get('/admin');
      assert.match(textOf(shown.text), /Warning: group rules exist but the scopes do not request "groups"/);
      assert.match(textOf(shown.text), /The group rules may do nothing/);
      assert.ok(shown.text.includes(`action="/admin/sso/${conn.id}/edit"`), 'an edit form per connection');

      // Edit with a wrong issuer: 422, the problem beside the issuer field, nothing saved.
      const edit = { csrf_token: csrf, issuer: `${okta.origin}/not-an-issuer`, client_id: clientId, flow: 'implicit', response_mode: 'form_post', client_secret: '', scopes: 'openid email profile groups', claims_email: 'email', claims_name: 'name', claims_username: 'preferred_username', claims_groups: 'groups', domains: `page-${dialect}.test`, group_roles: `Engineers,${team},admin`, allowed_tenant_ids: '', jit: 'on' };
      const wrong = await admin.post(`/admin/sso/${conn.id}/edit`, edit);
      assert.equal(wrong.status, 422, wrong.text.slice(0, 500));
      assert.match(wrong.text, /<details class="edit" open>/);
      assert.match(wrong.text, /name="issuer" type="url" required value="[^"]*not-an-issuer" aria-invalid="true"> <span class="field-error" role="alert">[^<]*HTTP 404/);
      let now = (await app.request('GET', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).body;
      assert.equal(now.issuer, okta.issuer);
      assert.equal(now.group_roles[0].role, 'member');

      // Right issuer: saved, discovery reran, the rule changed, the warning gone; JIT off; domains emptied.
      const right = await admin.post(`/admin/sso/${conn.id}/edit`, { ...edit, issuer: okta.issuer, domains: '', jit: '' });
      assert.equal(right.status, 303, right.text.slice(0, 800));
      now = (await app.request('GET', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).body;
      assert.equal(now.group_roles[0].role, 'admin');
      assert.deepEqual(now.domains, []);
      assert.equal(now.jit, false);
      assert.equal(now.enabled, true, 'the edit form leaves Enabled alone');
      assert.deepEqual(now.warnings, []);
      assert.notEqual(now.discovered_at, conn.discovered_at, 'discovery ran again on save');

      // A secret: set by the API; a blank box keeps it; the Remove box removes it.
      await okta.setClients([{ client_id: clientId, kind: 'implicit', redirect_uris: [callback] }, { client_id: `${clientId}-web`, kind: 'code', client_secret: 's3cret-value', redirect_uris: [callback] }]);
      const withSecret = await admin.post(`/admin/sso/${conn.id}/edit`, { ...edit, issuer: okta.issuer, client_id: `${clientId}-web`, flow: 'code', client_secret: 's3cret-value' });
      assert.equal(withSecret.status, 303, withSecret.text.slice(0, 800));
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).body.has_client_secret, true);
      const page = await admin.get('/admin');
      assert.ok(!page.text.includes('s3cret-value'), 'the secret is never shown');
      assert.equal((await admin.post(`/admin/sso/${conn.id}/edit`, { ...edit, issuer: okta.issuer, client_id: `${clientId}-web`, flow: 'code', client_secret: '' })).status, 303);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).body.has_client_secret, true, 'blank keeps it');
      assert.equal((await admin.post(`/admin/sso/${conn.id}/edit`, { ...edit, issuer: okta.issuer, remove_client_secret: 'on' })).status, 303);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).body.has_client_secret, false);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/sso/${conn.id}`, { key: adminKey })).status, 204);
    });
    /** Rows of what a sign-in writes (users, identities, memberships, sessions, audit), to see that a test login writes none. */
    async function counts(): Promise<Record<string, number>> {
      const db = app.gw.core.database.db;
      const out: Record<string, number> = {};
      for (const t of ['users', 'external_identities', 'team_members', 'sessions', 'audit_events'] as const) {
        out[t] = Number((await db.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      }
      return out;
    }

    test('Test login: what the token carried, the account and team roles it would give — and nothing changed', async () => {
      const domain = `tl-${dialect}.test`;
      const made = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, {
        key: adminKey,
        body: { issuer: okta.issuer, client_id: clientId, scopes: ['openid', 'email', 'profile', 'groups'], domains: [domain], group_roles: [{ group: 'Engineers', team, role: 'admin' }, { group: 'Ghosts', team, role: 'viewer' }], jit: true, enabled: false },
      });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const id = made.body.id as string;
      okta.addUser({ sub: `tia-${dialect}`, email: `tia@${domain}`, name: 'Tia', preferred_username: `tia-${dialect}`, groups: ['Engineers', 'Other'] });

      const admin = await signIn(app, adminEmail);
      const adminPage = await admin.get('/admin');
      const csrf = WebBrowser.csrf(adminPage.text);
      assert.ok(adminPage.text.includes(`action="/admin/sso/${id}/test-login" class="inline" target="_blank"`), 'a Test login button opening a new tab');
      const sessionBefore = admin.jar.get('trackgate.sid') ?? [...admin.jar].find(([k]) => /sid|session/i.test(k))?.[1];
      const before = await counts();

      // The new tab: the transaction is stored, the page links on to the IdP (a disabled connection can be tested).
      const started = await admin.post(`/admin/sso/${id}/test-login`, { csrf_token: csrf });
      assert.equal(started.status, 200, started.text.slice(0, 500));
      const url = decodeHtml(/<a class="button" href="([^"]+)">Continue to the identity provider/.exec(started.text)?.[1] ?? '');
      assert.ok(url.startsWith(okta.issuer), url);
      // The IdP is asked to authenticate afresh: one that remembers the admin would otherwise sign the admin in again.
      assert.equal(new URL(url).searchParams.get('prompt'), 'login', 'a test login sends prompt=login');
      const answer = await driveIdpLogin(url, `tia-${dialect}`);
      assert.equal(answer.kind, 'form_post');
      const back = await admin.post('/login/callback', (answer as { fields: Record<string, string> }).fields);
      assert.equal(back.status, 303, back.text.slice(0, 500));
      assert.match(back.location ?? '', /^\/admin\/sso\/test-report\?r=/);
      assert.deepEqual(back.setCookies.filter((c) => !c.startsWith('trackgate.login=')), [], 'no session cookie is set or changed');

      const report = await admin.get(back.location!);
      assert.equal(report.status, 200, report.text.slice(0, 500));
      const text = textOf(report.text);
      assert.match(text, /New account \(JIT\)/);
      assert.ok(text.includes(`tia-${dialect}`), 'the username it would get');
      assert.ok(text.includes(`tia@${domain}`));
      assert.match(text, new RegExp(`${team} none admin`), 'the team role the rules would give');
      assert.match(text, /groups : Engineers, Other/);
      assert.match(text, /the rule's group "Ghosts" .* did not appear in the token/);
      assert.ok(report.text.includes('&quot;sub&quot;: &quot;tia-'), 'the claims are shown');

      assert.deepEqual(await counts(), before, 'no user, identity, membership, session or audit row was written');
      const sessionAfter = admin.jar.get('trackgate.sid') ?? [...admin.jar].find(([k]) => /sid|session/i.test(k))?.[1];
      assert.equal(sessionAfter, sessionBefore, "the admin's own session is untouched");
      assert.equal((await admin.get('/admin')).status, 200, 'still signed in as the admin');

      // The report is the starting session's only: another admin session of the same org gets a 404.
      const other = await signIn(app, adminEmail);
      assert.equal((await other.get(back.location!)).status, 404);

      // The callback of a test transaction replayed, or finished in another browser, signs nobody in.
      const replay = await new WebBrowser(app).post('/login/callback', (answer as { fields: Record<string, string> }).fields);
      assert.notEqual(replay.status, 303);
      assert.ok(!replay.setCookies.some((c) => c.startsWith('trackgate.sid=')));

      // Without the groups scope: the missing claim is called out.
      await app.request('PATCH', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey, body: { scopes: ['openid', 'email', 'profile'] } });
      const before2 = await counts();
      const again = await admin.post(`/admin/sso/${id}/test-login`, { csrf_token: csrf });
      const url2 = decodeHtml(/<a class="button" href="([^"]+)"/.exec(again.text)?.[1] ?? '');
      const answer2 = await driveIdpLogin(url2, `tia-${dialect}`);
      const back2 = await admin.post('/login/callback', (answer2 as { fields: Record<string, string> }).fields);
      const text2 = textOf((await admin.get(back2.location!)).text);
      assert.match(text2, /the ID token has no "groups" claim — the connection does not request the "groups" scope/);
      assert.match(text2, /missing from the token/);
      assert.deepEqual(await counts(), before2);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey })).status, 204);
    });

    test('Test login: only an org admin starts one; a forged test report opens nothing', async () => {
      const made = await app.request('POST', `/gateway/v1/orgs/${org}/sso`, { key: adminKey, body: { issuer: okta.issuer, client_id: clientId } });
      const id = made.body.id as string;
      const m = await app.createUser({ org, username: `max-${dialect}` });
      assert.ok(m.key);
      const member = await signIn(app, `max-${dialect}@${org}.example`);
      const csrf = WebBrowser.csrf((await member.get('/settings')).text);
      const admin = await signIn(app, adminEmail);
      const before = await counts();
      const refused = await member.post(`/admin/sso/${id}/test-login`, { csrf_token: csrf });
      assert.equal(refused.status, 403);
      assert.ok(!refused.text.includes(okta.issuer + '/auth'), 'no IdP link');
      // Without the CSRF token, not even an admin.
      assert.equal((await admin.post(`/admin/sso/${id}/test-login`, {})).status, 403);
      // A made-up report.
      assert.equal((await admin.get('/admin/sso/test-report?r=abc')).status, 404);
      assert.deepEqual(await counts(), before);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/sso/${id}`, { key: adminKey })).status, 204);
    });
  });
}
