/**
 * SCIM /Users (issue 16): the request sequences Okta and Entra ID really send (shared/notes/scim.md),
 * replayed over HTTP against the real app, each answer checked for the shape the IdP expects;
 * deprovisioning (keys and sessions end at once, reactivation restores the account but not the keys),
 * DELETE and revival, a SCIM-created person's first SSO sign-in, bad input, and tenant isolation.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { Browser } from './support/idp/browser.ts';
import { freePort } from './support/net.ts';
import { ENTRA_AGENT, LIST_SCHEMA, PATCH_SCHEMA, USER_SCHEMA, assertScimError, scimClient, scimClientFor } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';
import { WebBrowser, signIn } from './support/web.ts';
import { ENTERPRISE_USER_SCHEMA as ENTERPRISE } from '../src/scim/scim-schemas.ts';

const PERSONAL_KEY = /tgp-[A-Za-z0-9]{40}/g;

let jose: JoseIdp;
before(async () => {
  jose = await startJoseIdp({ clientId: 'scim-spa' });
});
after(async () => {
  await jose.close();
});

/** The body Okta's SCIM client sends to create a user. */
function oktaUser(email: string, extra: Record<string, unknown> = {}) {
  const [local] = email.split('@');
  return {
    schemas: [USER_SCHEMA],
    userName: email,
    name: { givenName: local, familyName: 'Okta' },
    emails: [{ primary: true, value: email, type: 'work' }],
    displayName: `${local} Okta`,
    locale: 'en-US',
    externalId: `00u${randomUUID().replace(/-/g, '').slice(0, 17)}`,
    groups: [],
    password: 'Sup3rS3cret!',
    active: true,
    ...extra,
  };
}

/** A patch body as Okta and Entra send it. */
function patch(...ops: unknown[]) {
  return { schemas: [PATCH_SCHEMA], Operations: ops };
}

function assertListResponse(r: { status: number; headers: Headers; body: any; text: string }, expect: { total?: number; startIndex?: number; items?: number }) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/scim\+json/);
  assert.deepEqual(r.body.schemas, [LIST_SCHEMA]);
  for (const k of ['totalResults', 'startIndex', 'itemsPerPage']) assert.ok(Number.isInteger(r.body[k]), `${k} is an integer: ${r.text.slice(0, 200)}`);
  assert.ok(Array.isArray(r.body.Resources), 'Resources is a list, also when empty');
  assert.equal(r.body.itemsPerPage, r.body.Resources.length);
  if (expect.total !== undefined) assert.equal(r.body.totalResults, expect.total, r.text.slice(0, 500));
  if (expect.startIndex !== undefined) assert.equal(r.body.startIndex, expect.startIndex);
  if (expect.items !== undefined) assert.equal(r.body.Resources.length, expect.items);
}

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`SCIM /Users (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let org = '';
    let adminKey = '';
    let domain = '';
    let okta: ScimClient;
    let entra: ScimClient;
    let otherOrg = '';
    let otherScim: ScimClient;
    let otherDomain = '';

    const email = (local: string) => `${local}-${tag}@${domain}`;
    const api = (method: string, path: string, body?: unknown, key = adminKey) => app.request(method, `/gateway/v1${path}`, { key, ...(body === undefined ? {} : { body }) });
    const verify = async (key: string) => (await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(key) } })).status;
    const whoAmI = async (b: Browser) => (await b.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } })).status;

    async function auditOf(action: string, orgSlug = org) {
      const r = await api('GET', `/orgs/${orgSlug}/audit?action=${action}`);
      assert.equal(r.status, 200, r.text);
      return r.body.events as Array<{ actor: { type: string; id: string; name: string }; target: { id: string; name: string }; details: Record<string, any> }>;
    }

    /** A personal key made on the settings page of a signed-in browser. */
    async function newKey(b: WebBrowser, name: string): Promise<string> {
      const page = await b.get('/settings');
      assert.equal(page.status, 200, page.text.slice(0, 300));
      const created = await b.post('/settings/keys', { csrf_token: WebBrowser.csrf(page.text), name });
      assert.equal(created.status, 303, created.text.slice(0, 300));
      const shown = await b.get('/settings');
      const secret = [...new Set(shown.text.match(PERSONAL_KEY) ?? [])][0];
      assert.ok(secret, 'the new key is shown once');
      app.keys.add(secret);
      return secret;
    }

    async function create(client: ScimClient, body: Record<string, unknown>) {
      const r = await client.request('POST', '/Users', body);
      assert.equal(r.status, 201, r.text);
      return r.body as Record<string, any>;
    }

    /** Signs in through the jose IdP (a verified email of the connection's domain), as a person's browser does. */
    async function ssoLogin(claims: Record<string, unknown>) {
      const b = new Browser(app.url);
      const start = await b.get(`/login?org=${org}`, { 'sec-fetch-site': 'same-origin' });
      assert.equal(start.status, 303, start.text);
      const u = new URL(start.location!);
      const token = await jose.mint(u.searchParams.get('nonce')!, { claims });
      const r = await b.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
      return { r, b };
    }

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, ssoJwksCooldownSeconds: 0 });
      const boot = await app.bootstrap({ org: `scim-${tag}` });
      org = boot.org;
      adminKey = boot.adminKey;
      domain = `${org}.test`;
      const c = await api('POST', `/orgs/${org}/sso`, { issuer: jose.issuer, client_id: 'scim-spa', domains: [domain], jit: false });
      assert.equal(c.status, 201, c.text);
      okta = await scimClientFor(app, org, adminKey, { name: 'okta' });
      entra = await scimClientFor(app, org, adminKey, { name: 'entra', userAgent: ENTRA_AGENT });
      otherOrg = `scim-other-${tag}`;
      assert.equal((await api('POST', '/orgs', { slug: otherOrg, name: otherOrg, plan: 'enterprise' })).status, 201);
      otherDomain = `${otherOrg}.test`;
      assert.equal((await api('POST', `/orgs/${otherOrg}/sso`, { issuer: jose.issuer, client_id: 'scim-spa', domains: [otherDomain], jit: false })).status, 201);
      otherScim = await scimClientFor(app, otherOrg, adminKey, { name: 'okta-b' });
    });
    after(async () => {
      await app?.close();
    });

    test("Okta's sequence: lookup, create, read, replace; 409 on a duplicate, 404 and 401 in SCIM's shape", async () => {
      const alice = email('Alice');
      const lookup = await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${alice}"`)}&startIndex=1&count=100`);
      assertListResponse(lookup, { total: 0, startIndex: 1, items: 0 });

      const sent = oktaUser(alice);
      const r = await okta.request('POST', '/Users', sent);
      assert.equal(r.status, 201, r.text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/scim\+json/);
      const u = r.body;
      assert.deepEqual(u.schemas, [USER_SCHEMA]);
      assert.equal(typeof u.id, 'string');
      assert.equal(u.userName, alice.toLowerCase(), 'userName is the email, stored lower-case');
      assert.equal(u.externalId, sent.externalId);
      assert.deepEqual(u.name, { givenName: sent.name.givenName, familyName: 'Okta', formatted: `${sent.name.givenName} Okta` });
      assert.equal(u.displayName, sent.displayName);
      assert.deepEqual(u.emails, [{ value: alice.toLowerCase(), type: 'work', primary: true }]);
      assert.equal(u.active, true);
      assert.deepEqual(u.groups, []);
      assert.equal(u.password, undefined, 'a password is never kept nor answered');
      assert.equal(u.meta.resourceType, 'User');
      assert.equal(u.meta.location, `${app.url}/scim/v2/Users/${u.id}`);
      assert.equal(r.headers.get('location'), u.meta.location);
      assert.match(u.meta.version, /^W\/"/);
      assert.equal(r.headers.get('etag'), u.meta.version);

      // The account is a trackgate user of the organization, a member.
      const users = await api('GET', `/orgs/${org}/users?limit=200`);
      const row = users.body.users.find((x: any) => x.id === u.id);
      assert.equal(row.email, alice.toLowerCase());
      assert.equal(row.role, 'member');
      assert.equal(row.username, `alice-${tag}`, 'username from the email\'s local part');

      const got = await okta.request('GET', `/Users/${u.id}`);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.body, u);
      assert.equal(got.headers.get('etag'), u.meta.version);
      // The wizard's base URL without /v2 serves the same.
      const short = await scimClient(app, okta.token, { prefix: '/scim' }).request('GET', `/Users/${u.id}`);
      assert.deepEqual(short.body, u);

      // Lookup is case-insensitive on userName.
      const found = await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${alice.toUpperCase()}"`)}`);
      assertListResponse(found, { total: 1, items: 1 });
      assert.deepEqual(found.body.Resources[0], u);

      // Update: GET then PUT of the whole object.
      const put = await okta.request('PUT', `/Users/${u.id}`, { ...u, name: { givenName: 'Alicia', familyName: 'Okta' }, displayName: 'Alicia Okta' });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.name.givenName, 'Alicia');
      assert.equal(put.body.displayName, 'Alicia Okta');
      assert.notEqual(put.body.meta.version, u.meta.version, 'a change makes a new version');
      assert.equal((await api('GET', `/orgs/${org}/users/alice-${tag}`)).body.display_name, 'Alicia Okta');

      const dup = await okta.request('POST', '/Users', oktaUser(alice));
      assertScimError(dup, 409, 'uniqueness');

      assertScimError(await okta.request('GET', `/Users/${randomUUID()}`), 404);
      assertScimError(await scimClient(app, `tgscim-${'a'.repeat(40)}`).request('GET', '/Users'), 401);
      const none = await fetch(`${app.url}/scim/v2/Users`, { headers: { accept: 'application/scim+json' } });
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as any).status, '401');

      const created = (await auditOf('user.create')).find((e) => e.target.id === u.id);
      assert.ok(created, 'audited');
      assert.equal(created.actor.type, 'scim');
      assert.equal(created.actor.name, 'scim:okta');
      assert.equal(created.details.via, 'scim');
    });

    test("Entra ID's sequence: Test Connection, nulls, unquoted filters, capitalised ops, \"False\" strings, attributes it keeps elsewhere", async () => {
      const probe = await entra.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${randomUUID()}"`)}`);
      assertListResponse(probe, { total: 0, items: 0 });
      const probeId = await entra.request('GET', `/Users?filter=${encodeURIComponent(`id eq "${randomUUID()}"`)}`);
      assertListResponse(probeId, { total: 0 });

      const jy = email('JYoung');
      const xid = `jyoung-${tag}`;
      const r = await entra.request('POST', '/Users', {
        schemas: [USER_SCHEMA, ENTERPRISE],
        externalId: xid,
        userName: jy,
        active: 'True',
        addresses: null,
        displayName: 'Jessica Young',
        emails: [{ primary: 'True', type: 'work', value: jy }],
        meta: { resourceType: 'User' },
        name: { formatted: 'Jessica Young', familyName: 'Young', givenName: 'Jessica' },
        phoneNumbers: null,
        title: null,
        roles: [],
        [ENTERPRISE]: { employeeNumber: '42', department: 'Research', manager: null },
      });
      assert.equal(r.status, 201, r.text);
      const u = r.body;
      assert.equal(u.active, true);
      assert.equal(u.externalId, xid);
      assert.equal(u.phoneNumbers, undefined);
      assert.equal(u[ENTERPRISE], undefined, 'attributes trackgate does not keep are dropped, not refused');

      const byExternal = await entra.request('GET', `/Users?filter=${encodeURIComponent(`externalId eq ${xid}`)}`);
      assertListResponse(byExternal, { total: 1 });
      assert.equal(byExternal.body.Resources[0].id, u.id);
      // externalId is the IdP's own id: exact.
      assertListResponse(await entra.request('GET', `/Users?filter=${encodeURIComponent(`externalId eq ${xid.toUpperCase()}`)}`), { total: 0 });
      const byWorkEmail = await entra.request('GET', `/Users?filter=${encodeURIComponent(`emails[type eq "work"].value eq "${jy}"`)}`);
      assertListResponse(byWorkEmail, { total: 1 });
      assert.equal(byWorkEmail.body.Resources[0].id, u.id);
      assertListResponse(await entra.request('GET', `/Users?filter=${encodeURIComponent(`emails[type eq "home"].value eq "${jy}"`)}`), { total: 0 });
      assertListResponse(await entra.request('GET', `/Users?filter=${encodeURIComponent(`emails.value eq "${jy}" and externalId eq "${xid}"`)}`), { total: 1 });
      assertListResponse(await entra.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${jy}" and externalId eq "other"`)}`), { total: 0 });

      const off = await entra.request('PATCH', `/Users/${u.id}`, patch({ op: 'Replace', path: 'active', value: 'False' }));
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.active, false);
      const on = await entra.request('PATCH', `/Users/${u.id}`, patch({ op: 'Replace', path: 'active', value: 'True' }));
      assert.equal(on.body.active, true);

      // Attributes trackgate does not keep: 200, nothing changed.
      const before = (await entra.request('GET', `/Users/${u.id}`)).body;
      for (const ops of [
        [{ op: 'Replace', path: 'phoneNumbers[type eq "work"].value', value: '+1 555 0100' }],
        [{ op: 'Add', path: `${ENTERPRISE}:employeeNumber`, value: '43' }, { op: 'Add', path: `${ENTERPRISE}:manager`, value: [{ $ref: null, value: 'boss' }] }],
        [{ op: 'Replace', path: 'title', value: 'Engineer' }, { op: 'Replace', path: 'addresses[type eq "work"].locality', value: 'Oslo' }],
        [{ op: 'Replace', path: 'emails[type eq "work"].value', value: jy }],
        // userName is the email: another address in emails is not kept (Entra's mail may differ from its UPN).
        [{ op: 'Add', path: 'emails[type eq "home"].value', value: `home-${jy}` }],
        [{ op: 'Replace', path: 'emails[type eq "work" and primary eq "True"].value', value: `other-${jy}` }],
      ]) {
        const p = await entra.request('PATCH', `/Users/${u.id}`, patch(...ops));
        assert.equal(p.status, 200, `${JSON.stringify(ops)}: ${p.text}`);
        assert.deepEqual(p.body, before);
      }

      // Several changes in one request, Entra's way.
      const multi = await entra.request(
        'PATCH',
        `/Users/${u.id}`,
        patch(
          { op: 'Replace', path: 'displayName', value: 'Jess Young' },
          { op: 'Replace', path: 'name.givenName', value: 'Jess' },
          { op: 'Replace', value: { 'name.familyName': 'Young-Smith', phoneNumbers: null } },
          { op: 'Add', path: 'externalId', value: `${xid}-2` },
        ),
      );
      assert.equal(multi.status, 200, multi.text);
      assert.equal(multi.body.displayName, 'Jess Young');
      assert.deepEqual(multi.body.name, { givenName: 'Jess', familyName: 'Young-Smith', formatted: 'Jess Young-Smith' });
      assert.equal(multi.body.externalId, `${xid}-2`);
      // null removes.
      const cleared = await entra.request('PATCH', `/Users/${u.id}`, patch({ op: 'Replace', path: 'externalId', value: null }));
      assert.equal(cleared.status, 200, cleared.text);
      assert.equal(cleared.body.externalId, undefined);

      const updates = (await auditOf('user.update')).filter((e) => e.target.id === u.id);
      assert.ok(updates.length >= 2);
      assert.ok(updates.every((e) => e.actor.type === 'scim' && e.actor.name === 'scim:entra'));
    });
    test('unquoted filter values are the strings sent: 00123 is not 123, True is not a boolean, an email needs no quotes', async () => {
      // Entra ID sends values unquoted; scimmy alone reads `00123` as the number 123 and `True` as a (false) boolean.
      const padded = await create(entra, oktaUser(email('padded'), { externalId: '00123' }));
      const plain = await create(entra, oktaUser(email('plain'), { externalId: '123' }));
      const truthy = await create(entra, oktaUser(email('truthy'), { externalId: 'True' }));
      const falsy = await create(entra, oktaUser(email('falsy'), { externalId: 'false' }));
      const only = async (filter: string, id: string) => {
        const r = await entra.request('GET', `/Users?filter=${encodeURIComponent(filter)}`);
        assertListResponse(r, { total: 1 });
        assert.equal(r.body.Resources[0].id, id, filter);
      };
      await only('externalId eq 00123', padded.id);
      await only('externalId eq 123', plain.id);
      await only('externalId eq "00123"', padded.id);
      await only('externalId eq True', truthy.id);
      await only('externalId eq false', falsy.id);
      await only(`userName eq ${email('truthy')}`, truthy.id);
      await only(`userName eq "${email('truthy')}" and externalId eq True`, truthy.id);
      await only(`emails[type eq work].value eq ${email('padded')}`, padded.id);
      assertListResponse(await entra.request('GET', `/Users?filter=${encodeURIComponent('externalId eq TRUE')}`), { total: 0 });
    });

    test('deprovisioning by PATCH: both keys fail at once and the session ends; reactivation restores the account, not the keys', async () => {
      const bob = email('bob');
      const u = await create(okta, oktaUser(bob));
      const b = await signIn(app, bob);
      const k1 = await newKey(b, 'laptop');
      const k2 = await newKey(b, 'cron');
      assert.equal(await verify(k1), 200);
      assert.equal(await verify(k2), 200);
      assert.equal(await whoAmI(b), 200);

      const off = await okta.request('PATCH', `/Users/${u.id}`, patch({ op: 'replace', value: { active: false } }));
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.active, false);
      // No waiting: the answer came after the commit and the invalidation.
      assert.equal(await verify(k1), 401);
      assert.equal(await verify(k2), 401);
      assert.equal(await whoAmI(b), 401, 'the browser session ended');
      const ev = (await auditOf('user.deactivate')).find((e) => e.target.id === u.id);
      assert.ok(ev);
      assert.equal(ev.actor.type, 'scim');
      assert.equal(ev.details.keys_revoked, 2);
      assert.equal(ev.details.via, 'scim');
      const row = (await api('GET', `/orgs/${org}/users/bob-${tag}`)).body;
      assert.equal(row.status, 'deactivated');

      // Deactivating again changes nothing and records nothing.
      const again = await okta.request('PATCH', `/Users/${u.id}`, patch({ op: 'replace', value: { active: false } }));
      assert.equal(again.status, 200);
      assert.equal((await auditOf('user.deactivate')).filter((e) => e.target.id === u.id).length, 1);

      const on = await okta.request('PATCH', `/Users/${u.id}`, patch({ op: 'replace', value: { active: true } }));
      assert.equal(on.status, 200, on.text);
      assert.equal(on.body.active, true);
      assert.equal(await verify(k1), 401, 'keys revoked by deprovisioning stay revoked');
      assert.equal(await verify(k2), 401);
      assert.equal(await whoAmI(b), 401, 'the old session stays ended');
      assert.ok((await auditOf('user.reactivate')).some((e) => e.target.id === u.id && e.actor.type === 'scim'));
      const b2 = await signIn(app, bob);
      assert.equal(await whoAmI(b2), 200, 'they can sign in again');
      const k3 = await newKey(b2, 'new-laptop');
      assert.equal(await verify(k3), 200, 'a new key works');
    });

    test("deprovisioning by PUT active:false (Okta's wizard apps); PUT without active leaves the status; absent attributes are cleared", async () => {
      const carol = email('carol');
      const u = await create(okta, oktaUser(carol));
      const b = await signIn(app, carol);
      const k = await newKey(b, 'k');
      const off = await okta.request('PUT', `/Users/${u.id}`, { ...u, active: false });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.active, false);
      assert.equal(await verify(k), 401);
      assert.equal(await whoAmI(b), 401);

      const bare = await okta.request('PUT', `/Users/${u.id}`, { schemas: [USER_SCHEMA], userName: carol });
      assert.equal(bare.status, 200, bare.text);
      assert.equal(bare.body.active, false, 'active absent: unchanged');
      assert.equal(bare.body.externalId, undefined, 'externalId absent: cleared');
      assert.deepEqual(bare.body.name, { formatted: `carol-${tag}` });
      assert.equal(bare.body.displayName, `carol-${tag}`, 'no name at all: the username');
      const formatted = await okta.request('PUT', `/Users/${u.id}`, { schemas: [USER_SCHEMA], userName: carol, name: { formatted: 'Carol C. Jones' } });
      assert.equal(formatted.body.displayName, 'Carol C. Jones', 'name.formatted alone names the person');
      // Our own answer PUT back unchanged (Okta's GET-then-PUT) changes nothing.
      const same = await okta.request('PUT', `/Users/${u.id}`, formatted.body);
      assert.deepEqual(same.body, formatted.body);

      const on = await okta.request('PUT', `/Users/${u.id}`, { ...u, active: true });
      assert.equal(on.body.active, true);
      assert.equal(on.body.externalId, u.externalId);
      assert.equal(await verify(k), 401);
    });

    test('userName changes move the email, with the same rules as any new account', async () => {
      const dave = email('dave');
      const u = await create(okta, oktaUser(dave));
      const renamed = email('david');
      const r = await okta.request('PATCH', `/Users/${u.id}`, patch({ op: 'replace', path: 'userName', value: renamed }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.userName, renamed);
      assert.deepEqual(r.body.emails, [{ value: renamed, type: 'work', primary: true }]);
      assert.equal((await api('GET', `/orgs/${org}/users/dave-${tag}`)).body.email, renamed, 'same account, same username');
      // Another person's email in the organization, or an address of another organization's domain: 409.
      const taken = await okta.request('PUT', `/Users/${u.id}`, { ...r.body, userName: email('Alice') });
      assertScimError(taken, 409, 'uniqueness');
      const foreign = await okta.request('PUT', `/Users/${u.id}`, { ...r.body, userName: `dave@${otherDomain}` });
      assertScimError(foreign, 409, 'uniqueness');
      assert.doesNotMatch(foreign.body.detail.replace(`dave@${otherDomain}`, ''), new RegExp(otherOrg), 'nothing said about the other organization');
    });

    test('import: every person of the organization, paged in a stable order with integer counts', async () => {
      // People made by an admin and by the CLI are listed too (Okta's import matches them).
      assert.equal((await api('POST', `/orgs/${org}/users`, { email: email('byadmin'), username: `byadmin-${tag}` })).status, 201);
      await app.createUser({ org, username: `bycli-${tag}`, email: email('bycli') });
      for (let i = 0; i < 3; i++) await create(okta, oktaUser(email(`page${i}`)));
      const all = await okta.request('GET', '/Users?count=200');
      assertListResponse(all, { startIndex: 1 });
      const total = all.body.totalResults as number;
      assert.equal(all.body.Resources.length, total);
      assert.ok(total >= 8, `${total} people`);
      const names = all.body.Resources.map((r: any) => r.userName);
      for (const e of [email('byadmin'), email('bycli'), `admin@${org}.example`]) assert.ok(names.includes(e), `${e} listed`);

      const seen: string[] = [];
      for (let start = 1; start <= total; start += 2) {
        const p = await okta.request('GET', `/Users?startIndex=${start}&count=2`);
        assertListResponse(p, { total, startIndex: start, items: Math.min(2, total - start + 1) });
        seen.push(...p.body.Resources.map((r: any) => r.id));
      }
      assert.deepEqual(seen, all.body.Resources.map((r: any) => r.id), 'pages make the whole list, in order, without repeats');
      assertListResponse(await okta.request('GET', `/Users?startIndex=${total + 1}&count=2`), { total, items: 0 });
      assertListResponse(await okta.request('GET', '/Users?count=0'), { total, items: 0 });
      // startIndex below 1 is 1; a negative count is 0 (RFC 7644 §3.4.2.4); parameter names in any case.
      assertListResponse(await okta.request('GET', '/Users?startIndex=0&count=1'), { total, startIndex: 1, items: 1 });
      assertListResponse(await okta.request('GET', '/Users?count=-1'), { total, items: 0 });
      assertListResponse(await okta.request('GET', '/Users?STARTINDEX=2&Count=1'), { total, startIndex: 2, items: 1 });
      const capped = await okta.request('GET', '/Users?count=100000');
      assert.ok(capped.body.itemsPerPage <= 200);
      // attributes= keeps the named ones (and id, schemas, meta); excludedAttributes= drops them.
      const slim = await okta.request('GET', '/Users?count=1&attributes=userName,name.givenName');
      assert.deepEqual(Object.keys(slim.body.Resources[0]).sort(), ['id', 'meta', 'name', 'schemas', 'userName']);
      assert.deepEqual(Object.keys(slim.body.Resources[0].name), slim.body.Resources[0].name.givenName === undefined ? [] : ['givenName']);
      const noGroups = await okta.request('GET', '/Users?count=1&excludedAttributes=groups,emails');
      assert.equal(noGroups.body.Resources[0].groups, undefined);
      assert.equal(noGroups.body.Resources[0].emails, undefined);
      assert.equal(typeof noGroups.body.Resources[0].userName, 'string');
    });

    test('the same person created twice at once: one 201, one 409, one account', async () => {
      const twin = email('twin');
      const answers = await Promise.all([0, 1, 2].map(() => okta.request('POST', '/Users', oktaUser(twin))));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409], answers.map((a) => a.text).join('\n'));
      for (const a of answers.filter((x) => x.status === 409)) assertScimError(a, 409, 'uniqueness');
      assertListResponse(await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${twin}"`)}`), { total: 1 });
    });

    test('DELETE: the person leaves (keys, teams, identities, sessions), stays in the audit; a later POST brings the account back', async () => {
      const erin = email('erin');
      const u = await create(okta, oktaUser(erin));
      // An SSO identity, a team, a key, a session.
      const { r: login, b } = await ssoLogin({ sub: `erin-${tag}`, email: erin, email_verified: true });
      assert.equal(login.status, 303, login.text.slice(0, 500));
      assert.equal(await whoAmI(b), 200);
      const team = `erins-team-${tag}`;
      assert.equal((await api('POST', `/orgs/${org}/teams`, { name: team })).status, 201);
      assert.equal((await api('PUT', `/teams/${team}/members/erin-${tag}`, { role: 'member' })).status, 201);
      const withGroup = (await okta.request('GET', `/Users/${u.id}`)).body;
      assert.equal(withGroup.groups.length, 1);
      assert.equal(withGroup.groups[0].display, team);
      assert.equal(withGroup.groups[0].$ref, `${app.url}/scim/v2/Groups/${withGroup.groups[0].value}`);
      const wb = await signIn(app, erin);
      const k = await newKey(wb, 'k');

      const del = await okta.request('DELETE', `/Users/${u.id}`);
      assert.equal(del.status, 204, del.text);
      assert.equal(del.text, '');
      assert.equal(await verify(k), 401);
      assert.equal(await whoAmI(b), 401);
      assert.equal(await whoAmI(wb), 401);
      assertScimError(await okta.request('GET', `/Users/${u.id}`), 404);
      assertScimError(await okta.request('PATCH', `/Users/${u.id}`, patch({ op: 'replace', value: { active: true } })), 404);
      assertScimError(await okta.request('PUT', `/Users/${u.id}`, { ...u }), 404);
      assertScimError(await okta.request('DELETE', `/Users/${u.id}`), 404);
      assertListResponse(await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${erin}"`)}`), { total: 0 });
      const all = await okta.request('GET', '/Users?count=200');
      assert.ok(!all.body.Resources.some((r: any) => r.id === u.id), 'not listed');
      assert.equal((await api('GET', `/teams/${team}/members/erin-${tag}`)).status, 404, 'membership gone');
      const ids = await api('GET', `/orgs/${org}/users/erin-${tag}/identities`);
      assert.deepEqual(ids.body.identities, [], 'identities unlinked');
      const row = (await api('GET', `/orgs/${org}/users/erin-${tag}`)).body;
      assert.equal(row.status, 'deactivated', 'the users row stays');
      const removed = (await auditOf('user.remove')).find((e) => e.target.id === u.id);
      assert.ok(removed);
      assert.equal(removed.actor.type, 'scim');
      assert.deepEqual([removed.details.keys_revoked, removed.details.teams_left, removed.details.identities_unlinked], [1, 1, 1]);
      assert.ok((await auditOf('user.create')).some((e) => e.target.id === u.id), 'the earlier audit stays');

      // Back: same account, active, old key still revoked, teams and identities not restored.
      const back = await okta.request('POST', '/Users', oktaUser(erin));
      assert.equal(back.status, 201, back.text);
      assert.equal(back.body.id, u.id);
      assert.equal(back.body.active, true);
      assert.deepEqual(back.body.groups, []);
      assert.equal(await verify(k), 401);
      const again = await ssoLogin({ sub: `erin-${tag}`, email: erin, email_verified: true });
      assert.equal(again.r.status, 303, again.r.text.slice(0, 500));
      const me = await again.b.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
      assert.equal(JSON.parse(me.text).username, `erin-${tag}`);
    });

    test('a person SCIM created signs in through SSO into that same account', async () => {
      const fay = email('fay');
      const u = await create(entra, { schemas: [USER_SCHEMA], userName: fay, externalId: `fay-${tag}`, active: true });
      const { r, b } = await ssoLogin({ sub: `fay-sub-${tag}`, email: fay, email_verified: true });
      assert.equal(r.status, 303, r.text.slice(0, 500));
      const me = await b.request('GET', '/gateway/v1/me', { headers: { accept: 'application/json' } });
      assert.equal(me.status, 200);
      assert.equal(JSON.parse(me.text).username, `fay-${tag}`);
      const ids = await api('GET', `/orgs/${org}/users/fay-${tag}/identities`);
      assert.equal(ids.body.identities.length, 1);
      assert.equal(ids.body.identities[0].subject, `fay-sub-${tag}`);
      assert.equal((await entra.request('GET', `/Users/${u.id}`)).body.active, true);
      // A deactivated one cannot.
      assert.equal((await entra.request('PATCH', `/Users/${u.id}`, patch({ op: 'Replace', path: 'active', value: 'False' }))).status, 200);
      const refused = await ssoLogin({ sub: `fay-sub-${tag}`, email: fay, email_verified: true });
      assert.notEqual(refused.r.status, 303);
    });

    test('bad input: a clear 400 in SCIM shape, nothing half-written', async () => {
      assertScimError(await okta.request('POST', '/Users', oktaUser('not-an-email')), 400, 'invalidValue');
      assertScimError(await okta.request('POST', '/Users', { schemas: [USER_SCHEMA], displayName: 'no userName' }), 400, 'invalidValue');
      assertScimError(await okta.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: 42 }), 400, 'invalidValue');
      assertScimError(await okta.request('POST', '/Users', ['not', 'an', 'object']), 400, 'invalidSyntax');
      assertScimError(await okta.request('POST', '/Users', '"a string"'), 400);
      assertScimError(await okta.request('POST', '/Users', '{"userName": '), 400);
      assertScimError(await okta.request('POST', '/Users', { schemas: ['urn:example:Other'], userName: email('x') }), 400, 'invalidSyntax');
      // Refused by the main thread before the body is read (src/management/body-intake.ts), in SCIM's shape too.
      const big = await okta.request('POST', '/Users', { ...oktaUser(email('big')), padding: 'x'.repeat(1_100_000) });
      assertScimError(big, 413);
      assertListResponse(await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email('big')}"`)}`), { total: 0 });

      assertScimError(await okta.request('GET', '/Users?count=abc'), 400, 'invalidValue');
      assertScimError(await okta.request('GET', '/Users?startIndex=1.5'), 400, 'invalidValue');
      for (const f of ['userName co "x"', 'title eq "x"', 'garbage', 'userName eq "a" or userName eq "b"', 'userName pr', 'not (userName eq "a")', 'userName eq', 'name.givenName eq "x"']) {
        assertScimError(await okta.request('GET', `/Users?filter=${encodeURIComponent(f)}`), 400, 'invalidFilter');
      }

      const u = await create(okta, oktaUser(email('gus')));
      const path = `/Users/${u.id}`;
      assertScimError(await okta.request('PATCH', path, { schemas: [PATCH_SCHEMA], Operations: [] }), 400, 'invalidSyntax');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'add', path: 'groups', value: [{ value: randomUUID() }] })), 400, 'mutability');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', value: { groups: [] } })), 400, 'mutability');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'name..givenName', value: 'x' })), 400, 'invalidPath');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'emails[type eq "work"', value: 'x' })), 400, 'invalidPath');
      assertScimError(await okta.request('PATCH', path, [{ op: 'replace', path: 'active', value: false }]), 400, 'invalidSyntax');
      assertScimError(await okta.request('PUT', path, 'null'), 400, 'invalidSyntax');
      assertScimError(await okta.request('PUT', path, { schemas: [USER_SCHEMA], userName: 'not-an-email' }), 400, 'invalidValue');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'move', path: 'active', value: false })), 400, 'invalidSyntax');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'id', value: randomUUID() })), 400, 'mutability');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'displayName', value: 5 })), 400, 'invalidValue');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'name.nickname', value: 'x' })), 400, 'invalidPath');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'remove' })), 400, 'noTarget');
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'userName', value: 'nope' })), 400, 'invalidValue');
      // One bad operation among good ones: nothing of the request is applied.
      const mixed = await okta.request('PATCH', path, patch({ op: 'replace', path: 'displayName', value: 'Changed' }, { op: 'replace', path: 'active', value: 'maybe' }));
      assertScimError(mixed, 400, 'invalidValue');
      const now = await okta.request('GET', path);
      assert.equal(now.body.displayName, u.displayName);
      assert.equal(now.body.meta.version, u.meta.version);

      // Versions: a stale If-Match is 412, the current one passes.
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'displayName', value: 'x' }), { 'if-match': 'W/"stale"' }), 412);
      assertScimError(await okta.request('DELETE', path, undefined, { 'if-match': 'W/"stale"' }), 412);
      const ok = await okta.request('PATCH', path, patch({ op: 'replace', path: 'displayName', value: 'Gus G' }), { 'if-match': u.meta.version });
      assert.equal(ok.status, 200, ok.text);
      // An externalId another person holds.
      assertScimError(await okta.request('PATCH', path, patch({ op: 'replace', path: 'externalId', value: `fay-${tag}` })), 409, 'uniqueness');
      assertScimError(await okta.request('POST', '/Users', oktaUser(email('hal'), { externalId: `fay-${tag}` })), 409, 'uniqueness');
      assertListResponse(await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email('hal')}"`)}`), { total: 0 });
    });

    test("tenant isolation: another organization's token sees and changes nothing of this one", async () => {
      const ivy = email('ivy');
      const u = await create(okta, oktaUser(ivy));
      const path = `/Users/${u.id}`;
      assertScimError(await otherScim.request('GET', path), 404);
      assertScimError(await otherScim.request('PUT', path, { ...u, displayName: 'pwned' }), 404);
      assertScimError(await otherScim.request('PATCH', path, patch({ op: 'replace', value: { active: false } })), 404);
      assertScimError(await otherScim.request('DELETE', path), 404);
      for (const f of [`userName eq "${ivy}"`, `id eq "${u.id}"`, `externalId eq "${u.externalId}"`, `emails.value eq "${ivy}"`]) {
        assertListResponse(await otherScim.request('GET', `/Users?filter=${encodeURIComponent(f)}`), { total: 0 });
      }
      const theirs = await otherScim.request('GET', '/Users?count=200');
      assert.ok(theirs.body.Resources.every((r: any) => !r.userName.endsWith(`@${domain}`)), 'none of ours listed');
      const squat = await otherScim.request('POST', '/Users', oktaUser(ivy));
      assertScimError(squat, 409, 'uniqueness');
      assert.doesNotMatch(squat.body.detail.replace(ivy, ''), new RegExp(`\\b${org}\\b`), 'nothing said about this organization');
      const still = await okta.request('GET', path);
      assert.deepEqual(still.body, u, 'unchanged');
      // Their own person is theirs alone.
      const theirOwn = await create(otherScim, oktaUser(`ivy@${otherDomain}`));
      assertScimError(await okta.request('GET', `/Users/${theirOwn.id}`), 404);
    });

    // Last: it takes the organization's admin (the instance operator) away.
    test("the IdP deprovisions an organization's last admin, the instance operator included (no last-admin rule for SCIM)", async () => {
      const all = await okta.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "admin@${org}.example"`)}`);
      assertListResponse(all, { total: 1 });
      const admin = all.body.Resources[0];
      assert.equal(await verify(adminKey), 200);
      const off = await okta.request('PATCH', `/Users/${admin.id}`, patch({ op: 'replace', path: 'active', value: false }));
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.active, false);
      assert.equal(await verify(adminKey), 401);
      const on = await okta.request('PATCH', `/Users/${admin.id}`, patch({ op: 'replace', path: 'active', value: true }));
      assert.equal(on.body.active, true);
      assert.equal(await verify(adminKey), 401, 'their revoked key stays revoked');
    });
  });
}
