import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

for (const dialect of dialects()) {
  describe(`tenant isolation and roles (${dialect})`, () => {
    let app: TestApp;
    // Org A: an ordinary organization whose admin is NOT the instance operator.
    let orgA: string;
    let adminA: string;
    let orgB: string;
    let adminB: string;
    let teamB: string;
    let userB: string;
    let keyB: { id: string };
    before(async () => {
      app = await startApp(dialect);
      const op = await app.bootstrap({ org: `op-${dialect}` });
      orgA = `alpha-${dialect}`;
      orgB = `beta-${dialect}`;
      for (const slug of [orgA, orgB]) {
        const r = await app.request('POST', '/gateway/v1/orgs', { key: op.adminKey, body: { slug, name: slug, plan: 'enterprise' } });
        assert.equal(r.status, 201, r.text);
      }
      adminA = (await app.createUser({ org: orgA, username: `adm-a-${dialect}`, role: 'admin' })).key;
      adminB = (await app.createUser({ org: orgB, username: `adm-b-${dialect}`, role: 'admin' })).key;
      userB = (await app.createUser({ org: orgB, username: `user-b-${dialect}` })).username;
      teamB = `team-b-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${orgB}/teams`, { key: adminB, body: { name: teamB } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${teamB}/members/${userB}`, { key: adminB, body: { role: 'member' } })).status, 201);
      keyB = (await app.request('POST', '/gateway/v1/me/keys', { key: adminB, body: { name: 'b' } })).body;
    });
    after(() => app.close());

    test('an admin of org A gets 404 on every org-B resource path', async () => {
      const paths: Array<[string, string, unknown?]> = [
        ['GET', `/gateway/v1/orgs/${orgB}`],
        ['PATCH', `/gateway/v1/orgs/${orgB}`, { name: 'pwned' }],
        ['GET', `/gateway/v1/orgs/${orgB}/users`],
        ['POST', `/gateway/v1/orgs/${orgB}/users`, { email: 'x@evil.example', username: `evil-${dialect}`, role: 'admin' }],
        ['GET', `/gateway/v1/orgs/${orgB}/users/${userB}`],
        ['PATCH', `/gateway/v1/orgs/${orgB}/users/${userB}`, { role: 'viewer' }],
        ['DELETE', `/gateway/v1/orgs/${orgB}/users/${userB}`],
        ['GET', `/gateway/v1/orgs/${orgB}/teams`],
        ['POST', `/gateway/v1/orgs/${orgB}/teams`, { name: `evil-team-${dialect}` }],
        ['GET', `/gateway/v1/teams/${teamB}`],
        ['GET', `/gateway/v1/teams/${teamB}/members/${userB}`],
        ['PUT', `/gateway/v1/teams/${teamB}/members/${userB}`, { role: 'admin' }],
        ['DELETE', `/gateway/v1/teams/${teamB}/members/${userB}`],
        ['GET', `/gateway/v1/orgs/${orgB}/audit`],
        ['GET', `/gateway/v1/keys/${keyB.id}`],
        ['POST', `/gateway/v1/keys/${keyB.id}/rotate`, { grace_seconds: 0 }],
        ['DELETE', `/gateway/v1/keys/${keyB.id}`],
      ];
      for (const [method, path, body] of paths) {
        const r = await app.request(method, path, { key: adminA, body });
        assert.equal(r.status, 404, `${method} ${path} → ${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'not_found');
        assert.ok(!r.text.includes(orgB) || r.body.error.message.includes(orgB), 'no data of org B in the answer');
      }
      // Nothing changed in org B.
      const user = await app.request('GET', `/gateway/v1/orgs/${orgB}/users/${userB}`, { key: adminB });
      assert.equal(user.body.role, 'member');
      assert.equal(user.body.status, 'active');
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgB}`, { key: adminB })).body.name, orgB);
      assert.equal((await app.request('GET', `/gateway/v1/keys/${keyB.id}`, { key: adminB })).status, 200);
    });

    test('a service account of a team of org B gets 404 for other teams of B, their members, and all of org A', async () => {
      const teamA = `team-a-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${orgA}/teams`, { key: adminA, body: { name: teamA } })).status, 201);
      const teamB2 = `team-b2-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${orgB}/teams`, { key: adminB, body: { name: teamB2 } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${teamB2}/members/${userB}`, { key: adminB, body: { role: 'member' } })).status, 201);
      // Its creator leaves it again (GET /me below lists adminB's teams).
      assert.equal((await app.request('DELETE', `/gateway/v1/teams/${teamB2}/members/adm-b-${dialect}`, { key: adminB })).status, 204);
      const sa = await app.request('POST', `/gateway/v1/teams/${teamB}/service-accounts`, { key: adminB, body: { name: `robot ${dialect}` } });
      assert.equal(sa.status, 201, sa.text);
      const k = sa.body.key.key as string;
      const paths: Array<[string, string, unknown?]> = [
        ['GET', `/gateway/v1/teams/${teamB2}`],
        ['GET', `/gateway/v1/teams/${teamB2}/members/${userB}`],
        ['PUT', `/gateway/v1/teams/${teamB2}/members/${userB}`, { role: 'admin' }],
        ['DELETE', `/gateway/v1/teams/${teamB2}/members/${userB}`],
        ['GET', `/gateway/v1/orgs/${orgA}`],
        ['GET', `/gateway/v1/orgs/${orgA}/teams`],
        ['GET', `/gateway/v1/orgs/${orgA}/users`],
        ['GET', `/gateway/v1/orgs/${orgA}/audit`],
        ['GET', `/gateway/v1/teams/${teamA}`],
        ['GET', `/gateway/v1/teams/${teamA}/members/adm-a-${dialect}`],
      ];
      for (const [method, path, body] of paths) {
        const r = await app.request(method, path, { key: k, body });
        assert.equal(r.status, 404, `${method} ${path} → ${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'not_found');
      }
      const list = await app.request('GET', `/gateway/v1/orgs/${orgB}/teams`, { key: k });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.body.teams.map((t: { name: string }) => t.name), [teamB], 'the other teams of B are not listed');
      const own = await app.request('GET', `/gateway/v1/teams/${teamB}`, { key: k });
      assert.equal(own.status, 200);
      assert.deepEqual(own.body.members.map((m: { username: string; email: string | null }) => [m.username, m.email]).sort(), [[`adm-b-${dialect}`, null], [userB, null]]);
      // Still a member of B2: nothing changed.
      assert.equal((await app.request('GET', `/gateway/v1/teams/${teamB2}/members/${userB}`, { key: adminB })).status, 200);
    });

    test('a viewer cannot change anything in the organization', async () => {
      const viewer = await app.createUser({ org: orgB, username: `viewer-b-${dialect}`, role: 'viewer' });
      const attempts: Array<[string, string, unknown?]> = [
        ['POST', '/gateway/v1/orgs', { slug: `v-${dialect}`, name: 'v', plan: 'standard' }],
        ['PATCH', `/gateway/v1/orgs/${orgB}`, { name: 'renamed' }],
        ['PATCH', `/gateway/v1/orgs/${orgB}`, { policies: { require_sso: true } }],
        ['POST', `/gateway/v1/orgs/${orgB}/users`, { email: 'new@b.example', username: `new-${dialect}`, role: 'member' }],
        ['PATCH', `/gateway/v1/orgs/${orgB}/users/${userB}`, { role: 'admin' }],
        ['DELETE', `/gateway/v1/orgs/${orgB}/users/${userB}`],
        ['POST', `/gateway/v1/orgs/${orgB}/teams`, { name: `viewer-team-${dialect}` }],
        ['PUT', `/gateway/v1/teams/${teamB}/members/${viewer.username}`, { role: 'admin' }],
        ['PUT', `/gateway/v1/teams/${teamB}/members/${userB}`, { role: 'viewer' }],
        ['DELETE', `/gateway/v1/teams/${teamB}/members/${userB}`],
        ['GET', `/gateway/v1/orgs/${orgB}/audit`],
        ['DELETE', `/gateway/v1/keys/${keyB.id}`],
      ];
      for (const [method, path, body] of attempts) {
        const r = await app.request(method, path, { key: viewer.key, body });
        assert.ok(r.status === 403 || r.status === 404, `${method} ${path} → ${r.status} ${r.text}`);
      }
      // Reading is allowed.
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgB}/users`, { key: viewer.key })).status, 200);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgB}/teams`, { key: viewer.key })).status, 200);
      // Nothing changed.
      const team = await app.request('GET', `/gateway/v1/teams/${teamB}`, { key: adminB });
      assert.deepEqual(team.body.members.map((m: any) => [m.username, m.role]).sort(), [[`adm-b-${dialect}`, 'admin'], [userB, 'member']].sort());
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgB}`, { key: adminB })).body.policies.require_sso, false);
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${orgB}/users`, { key: adminB })).body.users.length, 3);
    });

    test('a member can create a team and administers it; cannot manage org users', async () => {
      const m = await app.createUser({ org: orgB, username: `member-b-${dialect}` });
      const team = `member-team-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${orgB}/teams`, { key: m.key, body: { name: team } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${userB}`, { key: m.key, body: { role: 'member' } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${userB}`, { key: m.key, body: { role: 'viewer' } })).status, 200);
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${orgB}/users/${userB}`, { key: m.key, body: { role: 'admin' } })).status, 403);
      const me = await app.request('GET', '/gateway/v1/me', { key: m.key });
      assert.deepEqual(me.body.teams, [{ name: team, org: orgB, role: 'admin' }]);
      // The team's only admin cannot step down (an org admin could still change it).
      const last = await app.request('PUT', `/gateway/v1/teams/${team}/members/member-b-${dialect}`, { key: m.key, body: { role: 'member' } });
      assert.equal(last.status, 409, last.text);
      assert.equal(last.body.error.code, 'last_team_admin');
      const member = await app.request('GET', `/gateway/v1/teams/${team}/members/${userB}`, { key: m.key });
      assert.equal(member.body.role, 'viewer');
      assert.equal((await app.request('GET', `/gateway/v1/teams/${team}/members/nobody`, { key: m.key })).status, 404);
    });

    test('only the instance operator creates organizations; an org admin cannot change its plan', async () => {
      const r = await app.request('POST', '/gateway/v1/orgs', { key: adminA, body: { slug: `x-${dialect}`, name: 'x', plan: 'standard' } });
      assert.equal(r.status, 403);
      const p = await app.request('PATCH', `/gateway/v1/orgs/${orgA}`, { key: adminA, body: { plan: 'standard' } });
      assert.equal(p.status, 403);
    });

    test('the last admin cannot be demoted or deactivated', async () => {
      const solo = `solo-${dialect}`;
      const op = await app.bootstrap({ org: solo });
      const url = `/gateway/v1/orgs/${solo}/users/${op.admin}`;
      const refused = async (r: { status: number; body: any }, what: string) => {
        assert.equal(r.status, 409, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'last_admin', what);
      };
      await refused(await app.request('PATCH', url, { key: op.adminKey, body: { role: 'member' } }), 'demoted');
      await refused(await app.request('PATCH', url, { key: op.adminKey, body: { status: 'deactivated' } }), 'deactivated (PATCH)');
      await refused(await app.request('DELETE', url, { key: op.adminKey }), 'deactivated (DELETE)');
      // A second admin who is deactivated does not count: the first is still the last active one.
      const second = await app.createUser({ org: solo, username: `second-${dialect}`, role: 'admin' });
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${solo}/users/${second.username}`, { key: op.adminKey })).status, 204);
      await refused(await app.request('PATCH', url, { key: op.adminKey, body: { status: 'deactivated' } }), 'deactivated beside a deactivated admin');
      const still = await app.request('GET', url, { key: op.adminKey });
      assert.equal(still.status, 200);
      assert.equal(still.body.role, 'admin');
      assert.equal(still.body.status, 'active');
    });

    test('GET /me', async () => {
      const r = await app.request('GET', '/gateway/v1/me', { key: adminB });
      assert.equal(r.status, 200);
      assert.equal(r.body.username, `adm-b-${dialect}`);
      assert.ok(r.body.email);
      assert.ok(r.body.display_name);
      assert.deepEqual(r.body.orgs, [{ slug: orgB, role: 'admin' }]);
      assert.deepEqual(r.body.teams, [{ name: teamB, org: orgB, role: 'admin' }]);
    });
  });
}
