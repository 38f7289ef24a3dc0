/**
 * SCIM /Groups (issue 16): a Group is a team. Replays what Okta's group push and Entra ID's provisioning
 * send (create, membership by PATCH in both dialects, rename, delete, linking a hand-made team), checks that
 * a membership change reaches the next request's identity (X-Trackgate-Teams on /auth/verify), that SCIM
 * and the other ways of managing a team coexist (the API and pages refuse adding or removing members of a
 * SCIM-owned team, SSO group rules skip it), and the bad input an IdP or an attacker may send.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { Browser } from './support/idp/browser.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { freePort } from './support/net.ts';
import { ENTRA_AGENT, GROUP_SCHEMA, LIST_SCHEMA, PATCH_SCHEMA, assertScimError, scimClientFor } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';
import { signIn, textOf } from './support/web.ts';

let jose: JoseIdp;
before(async () => {
  jose = await startJoseIdp({ clientId: 'groups-spa' });
});
after(async () => {
  await jose.close();
});

const patch = (...Operations: unknown[]) => ({ schemas: [PATCH_SCHEMA], Operations });

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`SCIM /Groups (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let adminEmail: string;
    let okta: ScimClient;
    let entra: ScimClient;
    let otherOrg: string;
    let otherKey: string;
    let otherScim: ScimClient;
    /** People of `org`: username → {id, key}. */
    const people = new Map<string, { id: string; key: string }>();
    let foreignUserId: string;
    const domain = `groups-${tag}.test`;

    async function api(method: string, path: string, key = adminKey, body?: unknown) {
      return app.request(method, `/gateway/v1${path}`, { key, ...(body === undefined ? {} : { body }) });
    }

    async function person(username: string, email?: string): Promise<{ id: string; key: string }> {
      const { key } = await app.createUser({ org, username, ...(email ? { email } : {}) });
      const r = await api('GET', `/orgs/${org}/users/${username}`);
      assert.equal(r.status, 200, r.text);
      const p = { id: r.body.id as string, key };
      people.set(username, p);
      return p;
    }

    const id = (username: string) => people.get(username)!.id;

    /** The teams the hot path puts on a request of `username` (its API key), as the upstream sees them. */
    async function teamsSeenBy(username: string): Promise<string[]> {
      const r = await fetch(app.url + '/auth/verify', { headers: { authorization: basic(people.get(username)!.key) } });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      return (r.headers.get('x-trackgate-teams') ?? '').split(',').filter((t) => t !== '');
    }

    async function auditOf(action: string) {
      const r = await api('GET', `/orgs/${org}/audit?action=${action}&limit=100`);
      assert.equal(r.status, 200, r.text);
      return r.body.events as Array<{ actor: { type: string; name: string }; target: { id: string; name: string }; details: Record<string, unknown> }>;
    }

    async function group(client: ScimClient, gid: string) {
      const r = await client.request('GET', `/Groups/${gid}`);
      assert.equal(r.status, 200, r.text);
      return r.body;
    }

    const memberIds = (g: { members?: Array<{ value: string }> }) => (g.members ?? []).map((m) => m.value).sort();

    async function createGroup(client: ScimClient, displayName: string, members: string[] = []) {
      const r = await client.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName, members: members.map((value) => ({ value })) });
      assert.equal(r.status, 201, r.text);
      return r.body as { id: string; displayName: string; members: Array<{ value: string; display: string }> };
    }

    /** The team name (slug) of a group, through the management API's team list. */
    async function teamNameOf(gid: string): Promise<string> {
      const r = await api('GET', `/orgs/${org}/teams?limit=200`);
      assert.equal(r.status, 200, r.text);
      const t = (r.body.teams as Array<{ id: string; name: string }>).find((x) => x.id === gid);
      assert.ok(t, `team ${gid} listed`);
      return t.name;
    }

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}`, allowHttpIssuers: true, ssoJwksCooldownSeconds: 0 });
      adminEmail = `root@${domain}`;
      const b = await app.bootstrap({ org: `grp-${tag}`, email: adminEmail });
      org = b.org;
      adminKey = b.adminKey;
      okta = await scimClientFor(app, org, adminKey, { name: 'okta' });
      entra = await scimClientFor(app, org, adminKey, { name: 'entra', userAgent: ENTRA_AGENT });
      for (const u of ['alice', 'bob', 'carol']) await person(`${u}-${tag}`);
      otherOrg = `other-${tag}`;
      const o = await api('POST', '/orgs', adminKey, { slug: otherOrg, name: otherOrg, plan: 'enterprise' });
      assert.equal(o.status, 201, o.text);
      const stranger = await app.createUser({ org: otherOrg, username: `stranger-${tag}`, role: 'admin' });
      otherKey = stranger.key;
      foreignUserId = (await api('GET', `/orgs/${otherOrg}/users/stranger-${tag}`, otherKey)).body.id;
      otherScim = await scimClientFor(app, otherOrg, otherKey, { name: 'other-idp' });
    });
    after(async () => {
      await app?.close();
    });

    test("Okta's group push: create, add, remove by filter, replace, rename, delete — each on the next request's identity", async () => {
      const [alice, bob, carol] = [`alice-${tag}`, `bob-${tag}`, `carol-${tag}`];
      const created = await okta.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'ML Engineers', members: [] });
      assert.equal(created.status, 201, created.text);
      assert.match(created.headers.get('content-type') ?? '', /^application\/scim\+json/);
      const g = created.body;
      assert.deepEqual(g.schemas, [GROUP_SCHEMA]);
      assert.equal(g.displayName, 'ML Engineers');
      assert.deepEqual(g.members, []);
      assert.equal(created.headers.get('location'), `${okta.baseUrl}/Groups/${g.id}`);
      assert.equal(g.meta.location, `${okta.baseUrl}/Groups/${g.id}`);
      assert.equal(g.meta.resourceType, 'Group');
      assert.equal(created.headers.get('etag'), g.meta.version);
      // The team is named after the group, as an entity name.
      assert.equal(await teamNameOf(g.id), 'ml-engineers');
      const [audit] = (await auditOf('team.create')).filter((e) => e.target.id === g.id);
      assert.ok(audit, 'team.create audited');
      assert.equal(audit.actor.type, 'scim');
      assert.equal(audit.actor.name, 'scim:okta');

      let r = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: [{ value: id(alice), display: alice }, { value: id(bob), display: bob }] }));
      assert.equal(r.status, 204, r.text);
      assert.equal(r.text, '');
      let now = await group(okta, g.id);
      assert.deepEqual(memberIds(now), [id(alice), id(bob)].sort());
      const aliceMember = now.members.find((m: { value: string }) => m.value === id(alice));
      assert.deepEqual(aliceMember, { value: id(alice), display: alice, $ref: `${okta.baseUrl}/Users/${id(alice)}`, type: 'User' });
      assert.ok((await teamsSeenBy(alice)).includes('ml-engineers'), 'alice is in the team on her next request');
      assert.ok((await teamsSeenBy(bob)).includes('ml-engineers'));
      const m = await api('GET', `/teams/ml-engineers/members/${alice}`);
      assert.equal(m.status, 200, m.text);
      assert.equal(m.body.role, 'member', 'SCIM adds people as members');

      r = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'remove', path: `members[value eq "${id(bob)}"]` }));
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(okta, g.id)), [id(alice)]);
      assert.ok(!(await teamsSeenBy(bob)).includes('ml-engineers'), 'bob left the team on his next request');
      assert.ok((await teamsSeenBy(alice)).includes('ml-engineers'));

      r = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'replace', path: 'members', value: [{ value: id(carol) }] }));
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(okta, g.id)), [id(carol)]);
      assert.ok(!(await teamsSeenBy(alice)).includes('ml-engineers'));
      assert.ok((await teamsSeenBy(carol)).includes('ml-engineers'));
      const removals = (await auditOf('team.member.remove')).filter((e) => e.target.id === g.id).map((e) => e.details.username);
      assert.deepEqual(removals.sort(), [alice, bob].sort(), 'one audit event per member removed');

      // Rename: a pathless replace of {id, displayName}. The team's name is an identifier and stays.
      r = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'replace', value: { id: g.id, displayName: 'ML Eng' } }));
      assert.equal(r.status, 204, r.text);
      now = await group(okta, g.id);
      assert.equal(now.displayName, 'ML Eng');
      assert.notEqual(now.meta.version, g.meta.version);
      assert.equal(await teamNameOf(g.id), 'ml-engineers');
      const found = await okta.request('GET', `/Groups?filter=${encodeURIComponent('displayName eq "ml eng"')}`);
      assert.equal(found.status, 200, found.text);
      assert.equal(found.body.totalResults, 1, 'displayName compares case-insensitively');
      assert.equal(found.body.Resources[0].id, g.id);

      r = await okta.request('DELETE', `/Groups/${g.id}`);
      assert.equal(r.status, 204, r.text);
      assertScimError(await okta.request('GET', `/Groups/${g.id}`), 404);
      assert.equal((await api('GET', '/teams/ml-engineers')).status, 404);
      assert.ok(!(await teamsSeenBy(carol)).includes('ml-engineers'));
      assert.equal((await auditOf('team.delete')).filter((e) => e.target.id === g.id).length, 1);
    });

    test("Entra ID's provisioning: lookup without members, capitalised ops, Remove with a value list, 204 answers", async () => {
      const [alice, bob] = [`alice-${tag}`, `bob-${tag}`];
      // Test Connection: a filter matching nothing is an empty ListResponse.
      let r = await entra.request('GET', `/Groups?filter=${encodeURIComponent(`displayName eq "${randomUUID()}"`)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { schemas: [LIST_SCHEMA], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
      const g = await createGroup(entra, 'Sales Team');
      await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: [{ value: id(alice) }] }));
      r = await entra.request('GET', `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Sales Team"')}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.totalResults, 1);
      assert.equal(r.body.Resources[0].id, g.id);
      assert.equal(r.body.Resources[0].displayName, 'Sales Team');
      assert.ok(!('members' in r.body.Resources[0]), 'excludedAttributes=members leaves them out');
      // Unquoted values, as Entra ID sends them.
      r = await entra.request('GET', `/Groups?filter=${encodeURIComponent(`id eq ${g.id}`)}&attributes=displayName`);
      assert.equal(r.body.totalResults, 1, r.text);
      assert.ok(!('members' in r.body.Resources[0]), 'attributes= without members leaves them out');

      r = await entra.request('PATCH', `/Groups/${g.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Add', path: 'members', value: [{ value: id(bob) }] }] });
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(entra, g.id)), [id(alice), id(bob)].sort());
      r = await entra.request('PATCH', `/Groups/${g.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Remove', path: 'members', value: [{ value: id(alice) }] }] });
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(entra, g.id)), [id(bob)]);
      assert.ok(!(await teamsSeenBy(alice)).includes('sales-team'));
      assert.ok((await teamsSeenBy(bob)).includes('sales-team'));
      r = await entra.request('PATCH', `/Groups/${g.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Replace', path: 'displayName', value: 'Sales' }, { op: 'Replace', path: 'externalId', value: 'aad-1234' }] });
      assert.equal(r.status, 204, r.text);
      r = await entra.request('GET', `/Groups?filter=${encodeURIComponent('externalId eq "aad-1234"')}`);
      assert.equal(r.body.totalResults, 1, r.text);
      assert.equal(r.body.Resources[0].displayName, 'Sales');
      assert.equal(r.body.Resources[0].externalId, 'aad-1234');
      r = await entra.request('GET', `/Groups?filter=${encodeURIComponent('externalId eq aad-1234')}&attributes=urn:ietf:params:scim:schemas:core:2.0:Group:externalId`);
      assert.equal(r.body.totalResults, 1, r.text);
      assert.equal(r.body.Resources[0].externalId, 'aad-1234');
      assert.ok(!('displayName' in r.body.Resources[0]), 'a fully qualified attributes= name selects too');
      // Adding someone already in, removing someone not in: nothing changes, nothing fails.
      r = await entra.request('PATCH', `/Groups/${g.id}`, patch({ op: 'Add', path: 'members', value: [{ value: id(bob) }] }, { op: 'Remove', path: 'members', value: [{ value: id(alice) }] }));
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(entra, g.id)), [id(bob)]);
    });

    test('PUT replaces the name and the members it lists; without members, they stay', async () => {
      const [alice, bob] = [`alice-${tag}`, `bob-${tag}`];
      const g = await createGroup(okta, 'Put Crew', [id(alice)]);
      assert.deepEqual(memberIds(g), [id(alice)]);
      let r = await okta.request('PUT', `/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Put Crew 2', members: [{ value: id(bob) }] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.displayName, 'Put Crew 2');
      assert.deepEqual(memberIds(r.body), [id(bob)]);
      assert.equal(r.headers.get('etag'), r.body.meta.version);
      r = await okta.request('PUT', `/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Put Crew 3' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(memberIds(r.body), [id(bob)]);
      // If-Match with another version: 412, nothing changed.
      r = await okta.request('PUT', `/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'Put Crew 4' }, { 'if-match': 'W/"stale"' });
      assertScimError(r, 412);
      assert.equal((await group(okta, g.id)).displayName, 'Put Crew 3');
      const current = await group(okta, g.id);
      r = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'replace', path: 'displayName', value: 'Put Crew 4' }), { 'if-match': current.meta.version });
      assert.equal(r.status, 204, r.text);
    });

    test('pagination: stable order, startIndex and count, count=0, bad numbers', async () => {
      for (const n of [1, 2, 3]) await createGroup(okta, `Page ${tag} ${n}`);
      const all = await okta.request('GET', '/Groups?count=200');
      assert.equal(all.status, 200, all.text);
      const total = all.body.totalResults as number;
      assert.ok(total >= 3);
      assert.equal(all.body.itemsPerPage, all.body.Resources.length);
      const ids = (all.body.Resources as Array<{ id: string }>).map((x) => x.id);
      const paged: string[] = [];
      for (let start = 1; start <= total; start += 2) {
        const r = await okta.request('GET', `/Groups?startIndex=${start}&count=2`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.startIndex, start);
        assert.equal(r.body.totalResults, total);
        paged.push(...(r.body.Resources as Array<{ id: string }>).map((x) => x.id));
      }
      assert.deepEqual(paged, ids, 'pages in the same stable order');
      const zero = await okta.request('GET', '/Groups?Count=0');
      assert.equal(zero.body.totalResults, total);
      assert.deepEqual(zero.body.Resources, []);
      assert.equal(zero.body.itemsPerPage, 0);
      assertScimError(await okta.request('GET', '/Groups?count=ten'), 400, 'invalidValue');
      assertScimError(await okta.request('GET', '/Groups?startIndex=1.5'), 400, 'invalidValue');
      const past = await okta.request('GET', `/Groups?startIndex=${total + 10}`);
      assert.equal(past.body.totalResults, total);
      assert.deepEqual(past.body.Resources, []);
    });

    test('linking a hand-made team: found by name, adopted at the first PATCH (audited), then SCIM-owned', async () => {
      const [alice, bob] = [`alice-${tag}`, `bob-${tag}`];
      const team = `platform-${tag}`;
      let r = await api('POST', `/orgs/${org}/teams`, adminKey, { name: team });
      assert.equal(r.status, 201, r.text);
      // An API-managed team accepts members (the control for the 409s below).
      assert.equal((await api('PUT', `/teams/${team}/members/${alice}`, adminKey, { role: 'viewer' })).status, 201);
      r = await okta.request('GET', `/Groups?filter=${encodeURIComponent(`displayName eq "${team}"`)}`);
      assert.equal(r.body.totalResults, 1, r.text);
      const gid = r.body.Resources[0].id as string;
      assert.ok(memberIds(r.body.Resources[0]).includes(id(alice)));
      assert.equal((await auditOf('team.scim_adopt')).filter((e) => e.target.id === gid).length, 0, 'reading does not adopt');

      r = await okta.request('PATCH', `/Groups/${gid}`, patch({ op: 'add', path: 'members', value: [{ value: id(bob) }] }));
      assert.equal(r.status, 204, r.text);
      const adopted = (await auditOf('team.scim_adopt')).filter((e) => e.target.id === gid);
      assert.equal(adopted.length, 1);
      assert.equal(adopted[0]!.actor.type, 'scim');
      // A person already in keeps the role an admin gave.
      assert.equal((await api('GET', `/teams/${team}/members/${alice}`)).body.role, 'viewer');
      assert.equal((await api('GET', `/teams/${team}/members/${bob}`)).body.role, 'member');

      // Coexistence: the API neither adds nor removes members of a SCIM-owned team; roles stay the admins'.
      r = await api('PUT', `/teams/${team}/members/carol-${tag}`, adminKey, { role: 'member' });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'team_managed_by_scim');
      r = await api('DELETE', `/teams/${team}/members/${bob}`);
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'team_managed_by_scim');
      r = await api('DELETE', `/teams/${team}/members/${alice}`, people.get(alice)!.key);
      assert.equal(r.status, 409, 'leaving is refused too: the IdP would put the person back');
      r = await api('PUT', `/teams/${team}/members/${alice}`, adminKey, { role: 'admin' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.role, 'admin');
      // The team's creator (the org admin, its admin by creation), alice and bob: carol was not let in.
      const ids = memberIds(await group(okta, gid));
      assert.equal(ids.length, 3);
      assert.ok(ids.includes(id(alice)) && ids.includes(id(bob)) && !ids.includes(id(`carol-${tag}`)));

      // The page says who manages the members and offers no add/remove controls; an API-managed team does.
      const browser = await signIn(app, adminEmail);
      const managed = await browser.get(`/teams/${team}`);
      assert.equal(managed.status, 200);
      assert.match(textOf(managed.text), /Managed by your IdP \(SCIM\)/);
      assert.doesNotMatch(managed.text, /Invite a new member/);
      assert.doesNotMatch(managed.text, /\/members\/[^"]+\/remove"/);
      assert.match(managed.text, new RegExp(`action="/teams/${team}/members/${bob}"`), 'the role form stays');
      const refused = await browser.post(`/teams/${team}/members/${bob}/remove`, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(managed.text)![1]! });
      assert.equal(refused.status, 409, refused.text.slice(0, 300));
      assert.match(textOf(refused.text), /managed by your IdP through SCIM/);
      assert.ok(memberIds(await group(okta, gid)).includes(id(bob)), 'a forged page form does not remove a member either');
      assert.equal(memberIds(await group(okta, gid)).length, 3);
      const handTeam = `hand-${tag}`;
      assert.equal((await api('POST', `/orgs/${org}/teams`, adminKey, { name: handTeam })).status, 201);
      const plain = await browser.get(`/teams/${handTeam}`);
      assert.doesNotMatch(textOf(plain.text), /Managed by your IdP/);
      assert.match(plain.text, /Invite a new member/);
    });

    test('bad input: clear 4xx in the SCIM shape, nothing half-written', async () => {
      const alice = `alice-${tag}`;
      assertScimError(await okta.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], members: [] }), 400, 'invalidValue');
      assertScimError(await okta.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: '   ' }), 400, 'invalidValue');
      assertScimError(await okta.request('POST', '/Groups', '[1,2]'), 400, 'invalidSyntax');
      const g = await createGroup(okta, `Dup ${tag}`);
      const dup = await okta.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: `dup ${tag}` });
      assertScimError(dup, 409, 'uniqueness');
      // Renaming onto another group's name is the same conflict.
      const other = await createGroup(okta, `Other ${tag}`);
      assertScimError(await okta.request('PATCH', `/Groups/${other.id}`, patch({ op: 'replace', path: 'displayName', value: `DUP ${tag}` })), 409, 'uniqueness');

      // A member id of another organization, and one that exists nowhere: the same answer, naming the value.
      const foreign = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: [{ value: id(alice) }, { value: foreignUserId }] }));
      assertScimError(foreign, 400, 'invalidValue');
      assert.ok(foreign.body.detail.includes(foreignUserId), foreign.body.detail);
      const nowhere = randomUUID();
      const unknown = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: [{ value: nowhere }] }));
      assertScimError(unknown, 400, 'invalidValue');
      assert.equal(foreign.body.detail.replace(foreignUserId, 'X'), unknown.body.detail.replace(nowhere, 'X'), 'no hint whether the id exists elsewhere');
      assert.deepEqual(memberIds(await group(okta, g.id)), [], 'alice was not added either: one transaction');
      assertScimError(await okta.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: `Foreign ${tag}`, members: [{ value: foreignUserId }] }), 400, 'invalidValue');
      assert.equal((await okta.request('GET', `/Groups?filter=${encodeURIComponent(`displayName eq "Foreign ${tag}"`)}`)).body.totalResults, 0, 'no team was left behind');

      // Malformed PATCH messages and unsupported filters.
      // As for /Users (docs/SCIM.md): a PatchOp without operations is not the message PATCH takes.
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch()), 400, 'invalidSyntax');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'move', path: 'members' })), 400, 'invalidSyntax');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'remove' })), 400, 'noTarget');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'remove', path: 'displayName' })), 400, 'invalidValue');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'add', path: 'members', value: ['not-an-object'] })), 400, 'invalidValue');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'remove', path: 'members[display eq "x"]' })), 400, 'invalidFilter');
      assertScimError(await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'replace', path: 'id', value: 'x' })), 400, 'mutability');
      assertScimError(await okta.request('GET', `/Groups?filter=${encodeURIComponent('displayName co "x"')}`), 400, 'invalidFilter');
      assertScimError(await okta.request('GET', `/Groups?filter=${encodeURIComponent('members eq "x"')}`), 400, 'invalidFilter');
      assertScimError(await okta.request('GET', `/Groups?filter=${encodeURIComponent('displayName eq "a" or displayName eq "b"')}`), 400, 'invalidFilter');
      assertScimError(await okta.request('GET', `/Groups?filter=${encodeURIComponent('displayName eq (')}`), 400, 'invalidFilter');
      // Attributes a Group does not keep are dropped, as for users.
      const ignored = await okta.request('PATCH', `/Groups/${g.id}`, patch({ op: 'replace', path: 'urn:example:extension:owner', value: 'x' }));
      assert.equal(ignored.status, 204, ignored.text);
      assertScimError(await okta.request('GET', `/Groups/${randomUUID()}`), 404);
    });

    test('concurrent PATCHes adding different people to one group all land; a huge member list is read in chunks', async () => {
      const names = [`alice-${tag}`, `bob-${tag}`, `carol-${tag}`];
      const g = await createGroup(entra, `Rush ${tag}`);
      const answers = await Promise.all(names.map((u) => entra.request('PATCH', `/Groups/${g.id}`, patch({ op: 'Add', path: 'members', value: [{ value: id(u) }] }))));
      for (const r of answers) assert.equal(r.status, 204, r.text);
      assert.deepEqual(memberIds(await group(entra, g.id)), names.map(id).sort());
      // 1200 ids (more than one statement's chunk), one of them a person: refused as a whole, the unknown ones counted.
      const many = Array.from({ length: 1199 }, () => ({ value: randomUUID() }));
      const r = await entra.request('PATCH', `/Groups/${g.id}`, patch({ op: 'Replace', path: 'members', value: [{ value: id(names[0]!) }, ...many] }));
      assertScimError(r, 400, 'invalidValue');
      assert.match(r.body.detail, /and 1194 more are not users of this organization/);
      assert.deepEqual(memberIds(await group(entra, g.id)), names.map(id).sort(), 'nothing changed');
    });

    test('a team holding service accounts is not deleted by the IdP', async () => {
      const g = await createGroup(okta, `Robots ${tag}`);
      const team = await teamNameOf(g.id);
      const sa = await api('POST', `/teams/${team}/service-accounts`, adminKey, { name: `nightly ${tag}` });
      assert.equal(sa.status, 201, sa.text);
      const r = await okta.request('DELETE', `/Groups/${g.id}`);
      assertScimError(r, 409);
      assert.match(r.body.detail, /service account/);
      assert.equal((await group(okta, g.id)).id, g.id, 'the group is still there');
    });

    test("another organization's group is not found, whatever the method", async () => {
      const alice = `alice-${tag}`;
      const g = await createGroup(okta, `Private ${tag}`, [id(alice)]);
      assertScimError(await otherScim.request('GET', `/Groups/${g.id}`), 404);
      assertScimError(await otherScim.request('PUT', `/Groups/${g.id}`, { schemas: [GROUP_SCHEMA], displayName: 'mine', members: [] }), 404);
      assertScimError(await otherScim.request('PATCH', `/Groups/${g.id}`, patch({ op: 'remove', path: 'members' })), 404);
      assertScimError(await otherScim.request('DELETE', `/Groups/${g.id}`), 404);
      const listed = await otherScim.request('GET', `/Groups?filter=${encodeURIComponent(`id eq "${g.id}"`)}`);
      assert.equal(listed.body.totalResults, 0);
      const still = await group(okta, g.id);
      assert.equal(still.displayName, `Private ${tag}`);
      assert.deepEqual(memberIds(still), [id(alice)]);
      // Nor can its IdP put our people in its teams.
      const theirs = await createGroup(otherScim, `Theirs ${tag}`);
      assertScimError(await otherScim.request('PATCH', `/Groups/${theirs.id}`, patch({ op: 'add', path: 'members', value: [{ value: id(alice) }] })), 400, 'invalidValue');
    });

    test('SSO group rules skip a SCIM-owned team at sign-in (and still manage the others)', async () => {
      const dave = await person(`dave-${tag}`, `dave@${domain}`);
      const g = await createGroup(okta, `Eng ${tag}`, [dave.id]);
      const scimTeam = await teamNameOf(g.id);
      const handTeam = `sso-hand-${tag}`;
      assert.equal((await api('POST', `/orgs/${org}/teams`, adminKey, { name: handTeam })).status, 201);
      const c = await api('POST', `/orgs/${org}/sso`, adminKey, {
        issuer: jose.issuer,
        client_id: 'groups-spa',
        domains: [domain],
        jit: true,
        group_roles: [
          { group: 'eng', team: scimTeam, role: 'member' },
          { group: 'eng', team: handTeam, role: 'member' },
        ],
      });
      assert.equal(c.status, 201, c.text);

      async function login(claims: Record<string, unknown>) {
        const browser = new Browser(app.url);
        const start = await browser.get(`/login?org=${org}`, { 'sec-fetch-site': 'same-origin' });
        assert.equal(start.status, 303, start.text);
        const u = new URL(start.location!);
        const token = await jose.mint(u.searchParams.get('nonce')!, { claims });
        const r = await browser.post('/login/callback', { id_token: token, state: u.searchParams.get('state')! });
        assert.equal(r.status, 303, r.text.slice(0, 500));
      }

      // Dave is in the SCIM group but not in the IdP's "eng" group: the rule would remove him; it must not.
      await login({ sub: `dave-${tag}`, email: `dave@${domain}`, email_verified: true, groups: [] });
      assert.deepEqual(memberIds(await group(okta, g.id)), [dave.id]);
      // Erin (just in time) is in "eng": she joins the hand-made team, not the SCIM-owned one.
      await login({ sub: `erin-${tag}`, email: `erin@${domain}`, email_verified: true, groups: ['eng'] });
      const hand = await api('GET', `/teams/${handTeam}`);
      assert.equal(hand.status, 200, hand.text);
      const erin = (hand.body.members as Array<{ username: string; user_id: string }>).find((m) => m.username.startsWith('erin'));
      assert.ok(erin, 'the rule still manages the hand-made team');
      assert.deepEqual(memberIds(await group(okta, g.id)), [dave.id], 'the SCIM-owned team kept its members');
    });
  });
}
