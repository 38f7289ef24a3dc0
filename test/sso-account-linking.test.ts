/**
 * Account takeover through SSO email linking (issue 13, critical): an
 * organization admin who controls an IdP puts someone else's email in a token.
 * Linking by email happens only with a verified email (a real boolean
 * email_verified, or Azure's xms_edov), of one of the connection's domains, to
 * an account bound to no identity yet, and never for the instance operator;
 * bound accounts move only through an explicit, audited unlink. Domains are
 * one organization's, and public mail domains are nobody's. Over HTTP, with a
 * hand-made IdP (jose) that mints whatever an attacker would, and an
 * oidc-provider IdP that looks like Azure AD.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { driveIdpLogin } from './support/idp/drive.ts';
import { startAzureLikeIdp } from './support/idp/oidc-provider-idp.ts';
import type { AzureLikeIdp } from './support/idp/oidc-provider-idp.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { freePort } from './support/net.ts';
import { signIn, textOf } from './support/web.ts';

const TENANT = 'bbbbbbbb-2222-4222-8222-222222222222';

let jose: JoseIdp;
let azure: AzureLikeIdp;
before(async () => {
  jose = await startJoseIdp({ clientId: 'attacker-spa' });
  azure = await startAzureLikeIdp({ tenants: [TENANT] });
});
after(async () => {
  await Promise.all([jose.close(), azure.close()]);
});

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`SSO account linking (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let operatorKey: string;
    let operatorOrg: string;
    let malloryKey: string;
    const acme = `acme-${tag}`;
    const contoso = `contoso-${tag}`;
    const other = `other-${tag}`;
    let acmeConnection: string;

    async function api(method: string, path: string, key: string, body?: unknown) {
      return app.request(method, `/gateway/v1${path}`, { key, ...(body === undefined ? {} : { body }) });
    }

    /** A login through the jose IdP into `org`, with the claims an attacker chose. */
    async function joseLogin(org: string, claims: Record<string, unknown>, browser = new Browser(app.url)) {
      const start = await browser.get(`/login?org=${org}`, { 'sec-fetch-site': 'same-origin' });
      assert.equal(start.status, 303, start.text);
      const u = new URL(start.location!);
      const token = await jose.mint(u.searchParams.get('nonce')!, { claims });
      const r = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
      return { r, browser };
    }

    async function azureLogin(sub: string, browser = new Browser(app.url)) {
      const start = await browser.get(`/login?org=${contoso}`, { 'sec-fetch-site': 'same-origin' });
      assert.equal(start.status, 303, start.text);
      const answer = await driveIdpLogin(start.location!, sub);
      assert.equal(answer.kind, 'form_post');
      const r = await browser.post('/login/callback', (answer as { fields: Record<string, string> }).fields);
      return { r, browser };
    }

    async function whoAmI(browser: Browser) {
      const r = await browser.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
      return { status: r.status, body: r.text ? JSON.parse(r.text) : null };
    }

    function assertSignedIn(r: { status: number; text: string; setCookies: string[] }) {
      assert.equal(r.status, 303, `${(r.text.match(/<code>[^<]*<\/code>|<p[^>]*>[^<]*<\/p>/g) ?? []).join(' ')} ${r.text.slice(0, 200)}`);
      assert.ok(r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'session cookie set');
    }

    function assertRefused(r: { status: number; text: string; setCookies: string[] }, code: string, message?: RegExp) {
      assert.ok(r.status === 400 || r.status === 403, `expected a refusal, got ${r.status}: ${r.text.slice(0, 300)}`);
      assert.match(r.text, new RegExp(`<code>${code}</code>`), r.text.slice(0, 2000));
      if (message) assert.match(r.text.replace(/&#39;/g, "'").replace(/&quot;/g, '"'), message);
      assert.ok(!r.setCookies.some((c) => c.startsWith('trackgate.sid=')), 'no session cookie');
    }

    async function identitiesOf(org: string, username: string, key = operatorKey) {
      const r = await api('GET', `/orgs/${org}/users/${username}/identities`, key);
      assert.equal(r.status, 200, r.text);
      return r.body.identities as Array<{ id: string; subject: string; issuer: string }>;
    }

    async function auditOf(org: string, action: string) {
      const r = await api('GET', `/orgs/${org}/audit?action=${action}`, operatorKey);
      assert.equal(r.status, 200, r.text);
      return r.body.events as Array<{ details: Record<string, unknown>; target: { name: string } }>;
    }

    async function provision(org: string, username: string, email: string) {
      const r = await api('POST', `/orgs/${org}/users`, operatorKey, { email, username });
      assert.equal(r.status, 201, r.text);
    }

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, ssoJwksCooldownSeconds: 0 });
      await azure.setClients([{ client_id: 'azure-spa', kind: 'implicit', redirect_uris: [`http://127.0.0.1:${port}/login/callback`] }]);
      // The operator's organization, whose operator has not linked any IdP identity.
      const b = await app.bootstrap({ org: `op-${tag}`, email: `root@op-${tag}.test` });
      operatorKey = b.adminKey;
      operatorOrg = b.org;
      malloryKey = (await app.createUser({ org: operatorOrg, username: `mallory-${tag}`, role: 'admin' })).key;
      for (const slug of [acme, contoso, other]) {
        const r = await api('POST', '/orgs', operatorKey, { slug, name: slug, plan: 'enterprise' });
        assert.equal(r.status, 201, r.text);
      }
      const c = await api('POST', `/orgs/${acme}/sso`, operatorKey, { issuer: jose.issuer, client_id: 'attacker-spa', domains: [`acme-${tag}.test`], jit: true });
      assert.equal(c.status, 201, c.text);
      acmeConnection = c.body.id;
      const o = await api('POST', `/orgs/${other}/sso`, operatorKey, { issuer: jose.issuer, client_id: 'attacker-spa', domains: [`globex-${tag}.test`], jit: true });
      assert.equal(o.status, 201, o.text);
      const z = await api('POST', `/orgs/${contoso}/sso`, operatorKey, { issuer: azure.organizationsIssuer, client_id: 'azure-spa', allowed_tenant_ids: [TENANT], domains: [`contoso-${tag}.test`], jit: false });
      assert.equal(z.status, 201, z.text);
    });
    after(async () => {
      await app?.close();
    });

    test('an email the IdP did not verify with a real boolean never links to an existing account', async () => {
      await provision(acme, `bob-${tag}`, `bob@acme-${tag}.test`);
      for (const [i, verified] of [undefined, 'true', 'false', 1, false].entries()) {
        const { r, browser } = await joseLogin(acme, { sub: `forger-${tag}-${i}`, email: `bob@acme-${tag}.test`, email_verified: verified });
        assertRefused(r, 'email_unverified', /did not say that it verified this address.*email_verified/);
        assert.equal((await whoAmI(browser)).status, 401);
      }
      assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 0, 'no identity was linked');
    });

    test('an address mapped from a claim other than "email" has no evidence, whatever email_verified says', async () => {
      const conn = await api('PATCH', `/orgs/${acme}/sso/${acmeConnection}`, operatorKey, { claims: { email: 'upn' } });
      assert.equal(conn.status, 200, conn.text);
      try {
        const { r } = await joseLogin(acme, { sub: `upn-forger-${tag}`, email: `someone@acme-${tag}.test`, upn: `bob@acme-${tag}.test`, email_verified: true });
        assertRefused(r, 'email_unverified', /standard "email" claim/);
        assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 0);
      } finally {
        assert.equal((await api('PATCH', `/orgs/${acme}/sso/${acmeConnection}`, operatorKey, { claims: { email: 'email' } })).status, 200);
      }
    });

    test("an email outside the connection's domains never links, even verified", async () => {
      await provision(acme, `carol-${tag}`, `carol@carol-${tag}.test`);
      const { r } = await joseLogin(acme, { sub: `carol-forger-${tag}`, email: `carol@carol-${tag}.test`, email_verified: true });
      assertRefused(r, 'email_domain_not_served', new RegExp(`must add carol-${tag}\\.test to the connection's domains`));
      assert.equal((await identitiesOf(acme, `carol-${tag}`)).length, 0);
    });

    test('a verified email of a connection domain links an unbound account once, and the audit names the rule', async () => {
      const first = await joseLogin(acme, { sub: `bob-idp-1-${tag}`, email: `bob@acme-${tag}.test`, email_verified: true });
      assertSignedIn(first.r);
      assert.equal((await whoAmI(first.browser)).body.username, `bob-${tag}`);
      const ids = await identitiesOf(acme, `bob-${tag}`);
      assert.equal(ids.length, 1);
      assert.equal(ids[0]!.subject, `bob-idp-1-${tag}`);
      const link = (await auditOf(acme, 'sso.identity.link')).find((e) => e.target.name === `bob-${tag}`);
      assert.equal(link?.details.rule, 'verified_email_in_connection_domain');
      assert.equal(link?.details.email_evidence, 'email_verified');
      const login = (await auditOf(acme, 'sso.login')).find((e) => e.target.name === `bob-${tag}`);
      assert.equal(login?.details.link_rule, 'email_verified+connection_domain+unbound_account');
      assert.equal(login?.details.how, 'email_link');

      // A second identity with the same verified email: never re-bound by email.
      const second = await joseLogin(acme, { sub: `bob-idp-2-${tag}`, email: `bob@acme-${tag}.test`, email_verified: true });
      assertRefused(second.r, 'account_linked_elsewhere', /can unlink the old identity/);
      assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 1);
      // The bound identity still signs in, by its subject, whatever email it now carries.
      const again = await joseLogin(acme, { sub: `bob-idp-1-${tag}`, email: `renamed@acme-${tag}.test` });
      assertSignedIn(again.r);
      assert.equal((await whoAmI(again.browser)).body.username, `bob-${tag}`);

      // An admin unlinks explicitly: audited, bob's sessions end, and the new identity may link.
      const before = await whoAmI(first.browser);
      assert.equal(before.status, 200);
      const del = await api('DELETE', `/orgs/${acme}/users/bob-${tag}/identities/${ids[0]!.id}`, operatorKey);
      assert.equal(del.status, 204, del.text);
      assert.equal((await whoAmI(first.browser)).status, 401, "the unlinked identity's session ended");
      assert.equal((await whoAmI(again.browser)).status, 401);
      const unlink = (await auditOf(acme, 'sso.identity.unlink')).find((e) => e.target.name === `bob-${tag}`);
      assert.equal(unlink?.details.subject, `bob-idp-1-${tag}`);
      const third = await joseLogin(acme, { sub: `bob-idp-2-${tag}`, email: `bob@acme-${tag}.test`, email_verified: true });
      assertSignedIn(third.r);
      assert.equal((await identitiesOf(acme, `bob-${tag}`))[0]!.subject, `bob-idp-2-${tag}`);
      // The old identity is nobody's now: with JIT on it would need an unused email.
      const old = await joseLogin(acme, { sub: `bob-idp-1-${tag}`, email: `bob@acme-${tag}.test`, email_verified: true });
      assertRefused(old.r, 'account_linked_elsewhere');
    });

    test('unlinking answers 404 for another organization, an unknown identity, and a non-admin', async () => {
      const ids = await identitiesOf(acme, `bob-${tag}`);
      assert.equal((await api('DELETE', `/orgs/${acme}/users/bob-${tag}/identities/00000000-0000-4000-8000-000000000000`, operatorKey)).status, 404);
      assert.equal((await api('GET', `/orgs/${acme}/users/bob-${tag}/identities`, malloryKey)).status, 404, "another organization's users do not exist for mallory");
      assert.equal((await api('DELETE', `/orgs/${acme}/users/bob-${tag}/identities/${ids[0]!.id}`, malloryKey)).status, 404);
      const member = await app.createUser({ org: acme, username: `member-${tag}` });
      assert.equal((await api('DELETE', `/orgs/${acme}/users/bob-${tag}/identities/${ids[0]!.id}`, member.key)).status, 403);
      assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 1);
    });

    test("an admin of the operator's organization cannot take over the operator through an IdP of their own", async () => {
      // Mallory, an admin of the operator's organization, connects her IdP and claims the operator's domain.
      const c = await api('POST', `/orgs/${operatorOrg}/sso`, malloryKey, { issuer: jose.issuer, client_id: 'attacker-spa', domains: [`op-${tag}.test`], jit: true });
      assert.equal(c.status, 201, c.text);
      const { r, browser } = await joseLogin(operatorOrg, { sub: `fake-root-${tag}`, email: `root@op-${tag}.test`, email_verified: true });
      assertRefused(r, 'operator_not_linkable');
      assert.equal((await whoAmI(browser)).status, 401);
      assert.equal((await identitiesOf(operatorOrg, `op-${tag}-admin`)).length, 0);
      // Nor can she unlink an identity the operator has, to link one of hers.
      const db = app.gw.core.database.db;
      const opId = (await sql<{ id: string }>`select id from users where email = ${`root@op-${tag}.test`}`.execute(db)).rows[0]!.id;
      const now = new Date().toISOString();
      await sql`insert into external_identities (id, org_id, user_id, connection_id, identity_key, issuer, subject, tenant_id, object_id, created_at, last_login_at)
        values (${`00000000-0000-4000-8000-00000000000${runIndex}`}, ${(await sql<{ org_id: string }>`select org_id from users where id = ${opId}`.execute(db)).rows[0]!.org_id}, ${opId}, ${c.body.id}, ${`oidc|https://idp.op.test|root-${tag}`}, 'https://idp.op.test', ${`root-${tag}`}, null, null, ${now}, ${now})`.execute(db);
      const [ident] = await identitiesOf(operatorOrg, `op-${tag}-admin`);
      const denied = await api('DELETE', `/orgs/${operatorOrg}/users/op-${tag}-admin/identities/${ident!.id}`, malloryKey);
      assert.equal(denied.status, 403, denied.text);
      assert.equal(denied.body.error.code, 'operator_identity');
      assert.equal((await api('DELETE', `/orgs/${operatorOrg}/users/op-${tag}-admin/identities/${ident!.id}`, operatorKey)).status, 204);
      // Still not linkable by email once unbound.
      assertRefused((await joseLogin(operatorOrg, { sub: `fake-root-2-${tag}`, email: `root@op-${tag}.test`, email_verified: true })).r, 'operator_not_linkable');
    });

    test('JIT never creates an account with an email another organization owns or uses', async () => {
      // globex-….test is claimed by the organization "other".
      const claimed = await joseLogin(acme, { sub: `squatter-${tag}`, email: `ceo@globex-${tag}.test`, email_verified: true });
      assertRefused(claimed.r, 'email_unavailable', /cannot be used for a new account/);
      assert.doesNotMatch(claimed.r.text, new RegExp(`${other}|another organization`), 'the refusal does not name the organization that owns the domain');
      // An email already used in another organization.
      const used = await joseLogin(acme, { sub: `squatter2-${tag}`, email: `root@op-${tag}.test`, email_verified: true });
      assertRefused(used.r, 'email_unavailable');
      const users = await api('GET', `/orgs/${acme}/users`, operatorKey);
      assert.ok(!users.body.users.some((u: { email: string }) => u.email === `ceo@globex-${tag}.test` || u.email === `root@op-${tag}.test`));
      // Something that is not one email address is no email: no account, nothing for X-Trackgate-Email.
      const odd = await joseLogin(acme, { sub: `odd-${tag}`, email: `root@op-${tag}.test,x@acme-${tag}.test`, email_verified: true });
      assertRefused(odd.r, 'email_missing');
      // An unused email of an unclaimed domain: a separate, new account.
      const fresh = await joseLogin(acme, { sub: `newbie-${tag}`, email: `newbie@unclaimed-${tag}.test` });
      assertSignedIn(fresh.r);
      assert.equal((await whoAmI(fresh.browser)).body.email, `newbie@unclaimed-${tag}.test`);
    });

    test('first sign-ins of one person at once (tabs, retries) all sign in to one account, never an error page', async () => {
      // The losers of the creation race run again and find what the winner made (a CI run once saw a 409 page here).
      for (let round = 0; round < 3; round++) {
        const claims = { sub: `twin-${round}-${tag}`, email: `twin${round}@acme-${tag}.test`, email_verified: true };
        const logins = await Promise.all(Array.from({ length: 6 }, () => joseLogin(acme, claims)));
        for (const { r } of logins) assertSignedIn(r);
        const who = await Promise.all(logins.map(({ browser }) => whoAmI(browser)));
        assert.equal(new Set(who.map((w) => w.body.username)).size, 1, 'one account');
        assert.equal((await identitiesOf(acme, who[0]!.body.username)).length, 1, 'one identity');
      }
    });

    test('domains: a public mail domain is refused; one claimed elsewhere "cannot be used", without saying by whom', async () => {
      for (const d of ['gmail.com', 'outlook.com', 'proton.me']) {
        const r = await api('POST', `/orgs/${other}/sso`, operatorKey, { issuer: jose.issuer, client_id: 'attacker-spa', domains: [d] });
        assert.equal(r.status, 422, r.text);
        assert.equal(r.body.error.problems[0].code, 'domain_public');
      }
      const elsewhere = await api('PATCH', `/orgs/${other}/sso/${(await api('GET', `/orgs/${other}/sso`, operatorKey)).body.connections[0].id}`, operatorKey, { domains: [`globex-${tag}.test`, `acme-${tag}.test`] });
      assert.equal(elsewhere.status, 422, elsewhere.text);
      assert.deepEqual(elsewhere.body.error.problems, [{ field: 'domains', code: 'domain_unavailable', message: `the email domain "acme-${tag}.test" cannot be used` }]);
      assert.doesNotMatch(elsewhere.text, new RegExp(`organization|${acmeConnection}|another`));
      // Within one organization, naming the connection that has it helps and reveals nothing.
      const same = await api('POST', `/orgs/${acme}/sso`, operatorKey, { issuer: jose.issuer, client_id: 'attacker-spa', domains: [`acme-${tag}.test`] });
      assert.equal(same.status, 422, same.text);
      assert.equal(same.body.error.problems[0].code, 'domain_taken');
      assert.match(same.body.error.problems[0].message, new RegExp(acmeConnection));
    });

    test('Azure AD: the email links only with xms_edov: true (it sends no email_verified)', async () => {
      await provision(contoso, `dan-${tag}`, `dan@contoso-${tag}.test`);
      const oid1 = `0000000d-0000-4000-8000-0000000000${String(runIndex).padStart(2, '0')}`;
      const forged = azure.addUser(TENANT, { oid: oid1, email: `dan@contoso-${tag}.test` });
      assertRefused((await azureLogin(forged.sub)).r, 'email_unverified', /xms_edov/);
      assert.equal((await identitiesOf(contoso, `dan-${tag}`)).length, 0);
      const oid2 = `0000000e-0000-4000-8000-0000000000${String(runIndex).padStart(2, '0')}`;
      const verified = azure.addUser(TENANT, { oid: oid2, email: `dan@contoso-${tag}.test`, extra: { xms_edov: true } });
      const { r, browser } = await azureLogin(verified.sub);
      assertSignedIn(r);
      assert.equal((await whoAmI(browser)).body.username, `dan-${tag}`);
      const link = (await auditOf(contoso, 'sso.identity.link')).find((e) => e.target.name === `dan-${tag}`);
      assert.equal(link?.details.email_evidence, 'azure_xms_edov');
    });

    test('the admin page lists linked identities and unlinks one, with its CSRF token only', async () => {
      const [ident] = await identitiesOf(acme, `bob-${tag}`);
      assert.ok(ident);
      await app.createUser({ org: acme, username: `acme-admin-${tag}`, role: 'admin', email: `acme-admin@acme-${tag}.example` });
      const admin = await signIn(app, `acme-admin@acme-${tag}.example`);
      const page = await admin.get('/admin');
      assert.equal(page.status, 200);
      const action = `/admin/users/bob-${tag}/identities/${ident.id}/unlink`;
      assert.ok(page.text.includes(`action="${action}"`), 'an Unlink form for the identity');
      assert.ok(textOf(page.text).includes(ident.subject));
      const forged = await admin.post(action, {});
      assert.equal(forged.status, 403, 'no CSRF token: refused');
      assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 1);
      const done = await admin.submit('/admin', action, {});
      assert.equal(done.status, 303, done.text.slice(0, 300));
      assert.equal((await identitiesOf(acme, `bob-${tag}`)).length, 0);
      assert.match(textOf((await admin.get('/admin')).text), new RegExp(`bob-${tag} was unlinked`));
    });
  });
}
