/**
 * Issue 16: a SCIM token of one organization sees and changes nothing of another. Two organizations on
 * one instance, each with its IdP's token, people (made by SCIM and by hand) and teams (made by SCIM and
 * by hand). Org B's token tries every way to reach org A's people and teams: lists, every filter, the
 * resources by id, membership, a colliding email. Then the credential itself: an API key is not a SCIM
 * token, a revoked token is refused, tokens are managed only by their own organization's admins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { provisionGroup, provisionUser, scimIdOf, teamMemberIds, userRow } from './support/scim-people.ts';
import { assertScimError, GROUP_SCHEMA, LIST_SCHEMA, PATCH_SCHEMA, scimClient, scimClientFor, USER_SCHEMA } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';

const q = (filter: string) => `filter=${encodeURIComponent(filter)}`;

/** Every resource of a list, page by page (count 200, the most a page holds). */
async function listAll(scim: ScimClient, resource: 'Users' | 'Groups', query = ''): Promise<any[]> {
  const out: any[] = [];
  for (let start = 1; ; ) {
    const r = await scim.request('GET', `/${resource}?startIndex=${start}&count=200${query ? '&' + query : ''}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.schemas, [LIST_SCHEMA]);
    out.push(...r.body.Resources);
    if (r.body.Resources.length === 0 || out.length >= r.body.totalResults) return out;
    start += r.body.Resources.length;
  }
}

/** What org A's own token sees of everything of A: it must be the same before and after org B's attempts. */
async function snapshot(scim: ScimClient): Promise<unknown> {
  const users = await listAll(scim, 'Users');
  const groups = await listAll(scim, 'Groups');
  return { users: users.sort((x, y) => x.id.localeCompare(y.id)), groups: groups.sort((x, y) => x.id.localeCompare(y.id)) };
}

let idp: JoseIdp;
before(async () => {
  idp = await startJoseIdp({ clientId: 'iso-spa' });
});
after(() => idp.close());

for (const dialect of dialects()) {
  describe(`SCIM tenant isolation (${dialect})`, () => {
    let app: TestApp;
    const A = { org: `iso-a-${dialect}`, adminKey: '', admin: '' };
    const B = { org: `iso-b-${dialect}`, adminKey: '', admin: '' };
    let scimA: ScimClient & { tokenId: string };
    let scimB: ScimClient & { tokenId: string };
    /** Org A's people and teams. */
    const A_DOMAIN = `alpha-${dialect}.test`;
    const a = { ann: { id: '', email: '' }, carl: { id: '', email: '', key: '' }, operatorId: '', groupId: '', handTeamId: '', handTeam: `a-hand-${dialect}` };
    const b = { bea: { id: '' }, groupId: '' };
    let before_: unknown;

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true });
      // A's people have emails of a domain that does not spell A's slug: an answer to B that names A is then a leak, not an echo of the email B sent.
      Object.assign(A, await app.bootstrap({ org: A.org, email: `op@${A_DOMAIN}` }));
      // Org B is made by the operator and has an admin of its own (not the operator).
      assert.equal((await app.request('POST', '/gateway/v1/orgs', { key: A.adminKey, body: { slug: B.org, name: 'Org B', plan: 'enterprise' } })).status, 201);
      const bAdminKey = await app.createUser({ org: B.org, username: `bkeys-${dialect}`, role: 'admin' });
      B.adminKey = bAdminKey.key;
      B.admin = bAdminKey.username;
      scimA = await scimClientFor(app, A.org, A.adminKey, { name: 'okta-a' });
      scimB = await scimClientFor(app, B.org, B.adminKey, { name: 'okta-b' });

      // Org A: a person SCIM made, a person made by hand (with a key), the operator; a SCIM group and a hand-made team.
      a.ann.email = `ann@${A_DOMAIN}`;
      a.ann.id = (await provisionUser(scimA, a.ann.email, { externalId: 'shared-ext-1' })).id;
      const carl = await app.createUser({ org: A.org, username: `carl-${dialect}`, email: `carl@${A_DOMAIN}` });
      a.carl = { email: `carl@${A_DOMAIN}`, key: carl.key, id: '' };
      a.carl.id = await scimIdOf(scimA, a.carl.email);
      a.operatorId = await scimIdOf(scimA, `op@${A_DOMAIN}`);
      a.groupId = (await provisionGroup(scimA, 'Research', [a.ann.id], { externalId: 'grp-ext-1' })).id;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${A.org}/teams`, { key: A.adminKey, body: { name: a.handTeam } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${a.handTeam}/members/${carl.username}`, { key: A.adminKey, body: { role: 'member' } })).status, 201);
      const hand = await scimA.request('GET', `/Groups?${q(`displayName eq "${a.handTeam}"`)}`);
      assert.equal(hand.body.totalResults, 1, hand.text);
      a.handTeamId = hand.body.Resources[0].id;

      // Org B: its own person with the same externalId as A's, its own group of the same display name.
      b.bea.id = (await provisionUser(scimB, `bea@${B.org}.example`, { externalId: 'shared-ext-1' })).id;
      b.groupId = (await provisionGroup(scimB, 'Research', [b.bea.id], { externalId: 'grp-ext-1' })).id;
      before_ = await snapshot(scimA);
    });
    after(() => app.close());

    const aIds = () => [a.ann.id, a.carl.id, a.operatorId];
    const aEmails = () => [a.ann.email, a.carl.email, `op@${A_DOMAIN}`];

    test('GET /Users with org B\'s token lists B\'s people only (none of A\'s, however they were made)', async () => {
      const users = await listAll(scimB, 'Users');
      const ids = users.map((u) => u.id);
      for (const id of aIds()) assert.ok(!ids.includes(id), `A's user ${id} listed to B`);
      for (const u of users) assert.match(u.userName, new RegExp(`@${B.org}\\.example$`), JSON.stringify(u));
      assert.ok(ids.includes(b.bea.id));
      // totalResults counts B's people only.
      const first = await scimB.request('GET', '/Users?count=0');
      assert.equal(first.body.totalResults, users.length, first.text);
    });

    test('every filter org B may send finds nothing of A\'s', async () => {
      const filters = [
        ...aEmails().flatMap((e) => [`userName eq "${e}"`, `userName eq "${e.toUpperCase()}"`, `emails[type eq "work"].value eq "${e}"`, `emails.value eq "${e}"`]),
        ...aIds().flatMap((id) => [`id eq "${id}"`, `id eq ${id}`]),
        `externalId eq "ext-ann"`,
        `userName eq "${a.ann.email}" and externalId eq "shared-ext-1"`,
      ];
      for (const f of filters) {
        const r = await scimB.request('GET', `/Users?${q(f)}&startIndex=1&count=100`);
        assert.equal(r.status, 200, `${f}: ${r.text}`);
        assert.equal(r.body.totalResults, 0, `${f}: ${r.text}`);
        assert.deepEqual(r.body.Resources, [], f);
      }
      // Unquoted, as Entra ID may send values: nothing of A's either (and A's own token finds them: the filter is read, not refused).
      for (const e of aEmails()) {
        const r = await scimB.request('GET', `/Users?${q(`userName eq ${e}`)}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.totalResults, 0, r.text);
        assert.equal((await scimA.request('GET', `/Users?${q(`userName eq ${e}`)}`)).body.totalResults, 1);
      }
      // The externalId both organizations use finds B's own person only.
      const shared = await scimB.request('GET', `/Users?${q('externalId eq "shared-ext-1"')}`);
      assert.deepEqual(shared.body.Resources.map((u: any) => u.id), [b.bea.id], shared.text);
      const mine = await scimA.request('GET', `/Users?${q('externalId eq "shared-ext-1"')}`);
      assert.deepEqual(mine.body.Resources.map((u: any) => u.id), [a.ann.id], mine.text);
    });

    test('A\'s people by id through B\'s token: GET, PUT, PATCH, DELETE → 404, nothing changed', async () => {
      for (const id of [...aIds(), a.groupId]) {
        assertScimError(await scimB.request('GET', `/Users/${id}`), 404);
        assertScimError(await scimB.request('PUT', `/Users/${id}`, { schemas: [USER_SCHEMA], userName: `taken-${id.slice(0, 6)}@${B.org}.example`, active: false }), 404);
        assertScimError(await scimB.request('PATCH', `/Users/${id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', value: { active: false } }] }), 404);
        assertScimError(await scimB.request('PATCH', `/Users/${id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] }), 404);
        assertScimError(await scimB.request('DELETE', `/Users/${id}`), 404);
      }
      // The 404 says nothing that tells "another organization's" from "no such user".
      const unknown = await scimB.request('GET', '/Users/00000000-0000-4000-8000-000000000000');
      const theirs = await scimB.request('GET', `/Users/${a.ann.id}`);
      assertScimError(unknown, 404);
      assert.equal(theirs.body.detail.replace(a.ann.id, 'X'), unknown.body.detail.replace('00000000-0000-4000-8000-000000000000', 'X'));
      for (const id of aIds()) assert.equal((await userRow(app, id))?.status, 'active');
      // Carl's key still works (no deactivation reached A).
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: a.carl.key })).status, 200);
    });

    test('A\'s teams through B\'s token: not listed, not found by any filter, GET/PUT/PATCH/DELETE → 404', async () => {
      const groups = await listAll(scimB, 'Groups');
      const ids = groups.map((g) => g.id);
      assert.ok(!ids.includes(a.groupId) && !ids.includes(a.handTeamId), JSON.stringify(ids));
      assert.ok(ids.includes(b.groupId));
      for (const f of [`displayName eq "${a.handTeam}"`, `id eq "${a.groupId}"`, `id eq "${a.handTeamId}"`, `externalId eq "grp-ext-1" and id eq "${a.groupId}"`]) {
        const r = await scimB.request('GET', `/Groups?${q(f)}`);
        assert.equal(r.status, 200, `${f}: ${r.text}`);
        assert.equal(r.body.totalResults, 0, `${f}: ${r.text}`);
      }
      // Both organizations have a "Research": each token sees its own.
      const research = await scimB.request('GET', `/Groups?${q('displayName eq "Research"')}&excludedAttributes=members`);
      assert.deepEqual(research.body.Resources.map((g: any) => g.id), [b.groupId], research.text);
      for (const id of [a.groupId, a.handTeamId]) {
        assertScimError(await scimB.request('GET', `/Groups/${id}`), 404);
        assertScimError(await scimB.request('PUT', `/Groups/${id}`, { schemas: [GROUP_SCHEMA], displayName: 'Hijacked', members: [{ value: b.bea.id }] }), 404);
        assertScimError(await scimB.request('PATCH', `/Groups/${id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'add', path: 'members', value: [{ value: b.bea.id }] }] }), 404);
        assertScimError(await scimB.request('PATCH', `/Groups/${id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'remove', path: `members[value eq "${a.ann.id}"]` }] }), 404);
        assertScimError(await scimB.request('PATCH', `/Groups/${id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', value: { id, displayName: 'Hijacked' } }] }), 404);
        assertScimError(await scimB.request('DELETE', `/Groups/${id}`), 404);
      }
      assert.deepEqual(await teamMemberIds(app, a.groupId), [a.ann.id]);
      // The hand-made team holds its creator (A's admin, as team admin) and carl.
      assert.deepEqual(await teamMemberIds(app, a.handTeamId), [a.carl.id, a.operatorId].sort());
    });

    test('B\'s group cannot take in A\'s people: PATCH add, PATCH replace, PUT, POST → 400 invalidValue, nothing changes', async () => {
      const bMembers = await teamMemberIds(app, b.groupId);
      for (const id of aIds()) {
        const add = await scimB.request('PATCH', `/Groups/${b.groupId}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'add', path: 'members', value: [{ value: id }] }] });
        assertScimError(add, 400, 'invalidValue');
        assert.ok(add.body.detail.includes(id), `the detail names the value: ${add.text}`);
        // Among a valid member: all or nothing.
        assertScimError(await scimB.request('PATCH', `/Groups/${b.groupId}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Add', path: 'members', value: [{ value: b.bea.id }, { value: id }] }] }), 400, 'invalidValue');
        assertScimError(await scimB.request('PATCH', `/Groups/${b.groupId}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', path: 'members', value: [{ value: id }] }] }), 400, 'invalidValue');
        assertScimError(await scimB.request('PUT', `/Groups/${b.groupId}`, { schemas: [GROUP_SCHEMA], displayName: 'Research', members: [{ value: id }] }), 400, 'invalidValue');
      }
      assert.deepEqual(await teamMemberIds(app, b.groupId), bMembers);
      const post = await scimB.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Smuggled', members: [{ value: a.ann.id }] });
      assertScimError(post, 400, 'invalidValue');
      assert.equal((await scimB.request('GET', `/Groups?${q('displayName eq "Smuggled"')}`)).body.totalResults, 0, 'no group half-made');
      // The message is the same for an id of nobody: nothing says the id exists elsewhere.
      const nobody = await scimB.request('PATCH', `/Groups/${b.groupId}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'add', path: 'members', value: [{ value: '11111111-1111-4111-8111-111111111111' }] }] });
      const theirs = await scimB.request('PATCH', `/Groups/${b.groupId}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'add', path: 'members', value: [{ value: a.ann.id }] }] });
      assert.equal(theirs.body.detail.replace(a.ann.id, 'X'), nobody.body.detail.replace('11111111-1111-4111-8111-111111111111', 'X'));
    });

    test('POST /Users with A\'s person\'s email from B → 409 uniqueness, naming nothing of A; PUT/PATCH to it alike', async () => {
      for (const email of aEmails()) {
        for (const userName of [email, email.toUpperCase()]) {
          const r = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName, emails: [{ value: userName, type: 'work', primary: true }], active: true });
          assertScimError(r, 409, 'uniqueness');
          assert.ok(!r.text.includes(A.org), `the answer names org A: ${r.text}`);
          for (const id of aIds()) assert.ok(!r.text.includes(id), r.text);
          assert.ok(!r.text.includes(`carl-${dialect}`) && !r.text.includes(A.admin), `the answer names A's people: ${r.text}`);
        }
        const put = await scimB.request('PUT', `/Users/${b.bea.id}`, { schemas: [USER_SCHEMA], userName: email, active: true });
        assertScimError(put, 409, 'uniqueness');
        assert.ok(!put.text.includes(A.org), put.text);
        const patch = await scimB.request('PATCH', `/Users/${b.bea.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', path: 'userName', value: email }] });
        assertScimError(patch, 409, 'uniqueness');
        assert.ok(!patch.text.includes(A.org), patch.text);
      }
      assert.equal((await userRow(app, b.bea.id))?.email, `bea@${B.org}.example`);
    });

    test('an email of a domain org A\'s SSO claims cannot be provisioned by B (409, naming nothing of A)', async () => {
      const conn = await app.request('POST', `/gateway/v1/orgs/${A.org}/sso`, { key: A.adminKey, body: { issuer: idp.issuer, client_id: 'iso-spa', domains: [A_DOMAIN], enabled: true } });
      assert.equal(conn.status, 201, conn.text);
      const email = `newcomer@${A_DOMAIN}`;
      const post = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: email, emails: [{ value: email, type: 'work', primary: true }] });
      assertScimError(post, 409, 'uniqueness');
      assert.ok(!post.text.includes(A.org), post.text);
      const patch = await scimB.request('PATCH', `/Users/${b.bea.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'replace', path: 'userName', value: email.toUpperCase() }] });
      assertScimError(patch, 409, 'uniqueness');
      assert.ok(!patch.text.includes(A.org), patch.text);
      assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "${email}"`)}`)).body.totalResults, 0);
      // A's own IdP may (A's state is checked first: the final comparison covers what comes after).
      assert.deepEqual(await snapshot(scimA), before_);
      assert.equal((await scimA.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: email })).status, 201);
      before_ = await snapshot(scimA);
    });

    test('credentials: an org admin\'s API key is not a SCIM token (401); a SCIM token is nothing but one', async () => {
      for (const key of [A.adminKey, B.adminKey, a.carl.key]) {
        for (const headers of [{ authorization: `Bearer ${key}` }, { authorization: basic(key) }]) {
          const r = await scimClient(app, 'x').request('GET', '/Users', undefined, headers);
          assertScimError(r, 401);
          assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
        }
      }
      assertScimError(await scimClient(app, '').request('GET', '/Users', undefined, { authorization: '' }), 401);
      // A SCIM token does nothing outside /scim: not the management API, not forward auth, not the proxy.
      for (const headers of [{ authorization: `Bearer ${scimB.token}` }, { authorization: basic(scimB.token) }]) {
        assert.equal((await fetch(app.url + '/gateway/v1/me', { headers })).status, 401);
        assert.equal((await fetch(`${app.url}/gateway/v1/orgs/${B.org}/users`, { headers })).status, 401);
        assert.equal((await fetch(app.url + '/auth/verify', { headers })).status, 401);
      }
      // Under /scim and /scim/v2 alike (Okta's wizard may drop the version).
      const bare = scimClient(app, scimB.token, { prefix: '/scim' });
      assert.equal((await bare.request('GET', `/Users/${b.bea.id}`)).status, 200);
      assertScimError(await bare.request('GET', `/Users/${a.ann.id}`), 404);
    });

    test('SCIM tokens are their organization\'s: B\'s admin cannot list or revoke A\'s; a revoked token is refused at once', async () => {
      const listA = await app.request('GET', `/gateway/v1/orgs/${A.org}/scim/tokens`, { key: B.adminKey });
      assert.ok(listA.status === 403 || listA.status === 404, listA.text);
      const revokeAsB = await app.request('DELETE', `/gateway/v1/orgs/${B.org}/scim/tokens/${scimA.tokenId}`, { key: B.adminKey });
      assert.equal(revokeAsB.status, 404, revokeAsB.text);
      const revokeInA = await app.request('DELETE', `/gateway/v1/orgs/${A.org}/scim/tokens/${scimA.tokenId}`, { key: B.adminKey });
      assert.ok(revokeInA.status === 403 || revokeInA.status === 404, revokeInA.text);
      // A plain member of A cannot either.
      assert.ok([403, 404].includes((await app.request('GET', `/gateway/v1/orgs/${A.org}/scim/tokens`, { key: a.carl.key })).status));
      assert.equal((await scimA.request('GET', '/Users?count=1')).status, 200, 'A\'s token still works');

      const spare = await scimClientFor(app, B.org, B.adminKey, { name: 'rotation' });
      assert.equal((await spare.request('GET', '/Users?count=1')).status, 200);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${B.org}/scim/tokens/${spare.tokenId}`, { key: B.adminKey })).status, 204);
      assertScimError(await spare.request('GET', '/Users?count=1'), 401);
      assertScimError(await spare.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: `late@${B.org}.example` }), 401);
      assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "late@${B.org}.example"`)}`)).body.totalResults, 0);
      assert.equal((await scimB.request('GET', '/Users?count=1')).status, 200, 'the other token of B still works');
    });

    test('after all of B\'s attempts, A\'s people and teams are exactly as they were', async () => {
      assert.deepEqual(await snapshot(scimA), before_);
    });
  });
}
