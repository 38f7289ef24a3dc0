import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

for (const dialect of dialects()) {
  describe(`service accounts (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let team: string;
    let teamAdmin: { key: string; username: string };
    let member: { key: string; username: string };
    let outsider: { key: string; username: string };

    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
      team = `ml-${org}`;
      teamAdmin = await app.createUser({ org, username: `tadmin-${org}` });
      member = await app.createUser({ org, username: `member-${org}` });
      outsider = await app.createUser({ org, username: `outsider-${org}` });
      const t = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } });
      assert.equal(t.status, 201, t.text);
      for (const [u, role] of [[teamAdmin.username, 'admin'], [member.username, 'member']] as const) {
        const r = await app.request('PUT', `/gateway/v1/teams/${team}/members/${u}`, { key: adminKey, body: { role } });
        assert.ok(r.status === 201 || r.status === 200, r.text);
      }
    });
    after(() => app.close());

    const create = (key: string, body: Record<string, unknown> = { name: 'nightly retrain' }, on = team) =>
      app.request('POST', `/gateway/v1/teams/${on}/service-accounts`, { key, body });

    test('a team admin creates one; its key is shown once and acts as the service account, with write access to the team only', async () => {
      const r = await create(teamAdmin.key);
      assert.equal(r.status, 201, r.text);
      const sa = r.body;
      for (const f of ['id', 'username', 'team', 'key']) assert.ok(f in sa, f);
      assert.equal(sa.team, team);
      assert.equal(sa.scope, 'team');
      assert.equal(sa.name, 'nightly retrain');
      assert.match(sa.username, /^nightly-retrain/);
      for (const f of ['id', 'key', 'key_id']) assert.ok(sa.key[f], f);
      assert.match(sa.key.key, /^tgs-[A-Za-z0-9]{40}$/);
      assert.equal(sa.key.owner.type, 'service_account');

      const me = await app.request('GET', '/gateway/v1/me', { key: sa.key.key });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.principal_type, 'service_account');
      assert.equal(me.body.username, sa.username);
      assert.deepEqual(me.body.teams.map((t: { name: string; role: string }) => [t.name, t.role]), [[team, 'member']]);

      const listed = await app.request('GET', `/gateway/v1/teams/${team}/service-accounts`, { key: member.key });
      assert.equal(listed.status, 200);
      assert.ok(listed.body.service_accounts.some((x: { id: string }) => x.id === sa.id));
      assert.ok(!listed.text.includes(sa.key.key), 'lists never show a secret');
    });

    test('a service account can never manage users, SSO, teams or keys', async () => {
      const sa = (await create(adminKey, { name: 'locked down' })).body;
      const k = sa.key.key;
      const attempts: Array<[string, string, unknown?]> = [
        ['POST', '/gateway/v1/me/keys', { name: 'x' }],
        ['GET', `/gateway/v1/service-accounts/${sa.id}/keys`],
        ['POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { name: 'x' }],
        ['POST', `/gateway/v1/keys/${sa.key.id}/rotate`, { grace_seconds: 0 }],
        ['DELETE', `/gateway/v1/keys/${sa.key.id}`],
        ['POST', `/gateway/v1/teams/${team}/service-accounts`, { name: 'child' }],
        ['DELETE', `/gateway/v1/service-accounts/${sa.id}`],
        ['GET', `/gateway/v1/orgs/${org}/users`],
        ['POST', `/gateway/v1/orgs/${org}/users`, { email: 'x@y.example', username: 'sa-made-user' }],
        ['PUT', `/gateway/v1/teams/${team}/members/${outsider.username}`, { role: 'member' }],
        ['GET', `/gateway/v1/orgs/${org}/audit`],
        ['PATCH', `/gateway/v1/orgs/${org}`, { name: 'renamed' }],
      ];
      for (const [method, path, body] of attempts) {
        const r = await app.request(method, path, { key: k, body });
        assert.ok(r.status === 403 || r.status === 404, `${method} ${path} answered ${r.status}: ${r.text}`);
      }
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k })).status, 200, 'its key still works');
      const sso = await app.request('GET', `/gateway/v1/orgs/${org}/sso-connections`, { key: k });
      assert.ok(sso.status === 403 || sso.status === 404, `SSO connections: ${sso.status}`);
    });

    test('a service account sees its own team only: another team and its members are 404, the list shows its team, no member emails', async () => {
      const other = `other-${org}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: other } })).status, 201);
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${other}/members/${outsider.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
      const teamScoped = (await create(adminKey, { name: 'own team only' })).body;
      const orgScoped = (await app.request('POST', `/gateway/v1/orgs/${org}/service-accounts`, { key: adminKey, body: { name: 'org scoped own team', default_team: team } })).body;
      assert.equal(orgScoped.scope, 'org');
      for (const sa of [teamScoped, orgScoped]) {
        const k = sa.key.key;
        // Its own team: members by username (for X-WANDB-USERNAME attribution), never their emails.
        const own = await app.request('GET', `/gateway/v1/teams/${team}`, { key: k });
        assert.equal(own.status, 200, own.text);
        assert.ok(own.body.members.some((m: { username: string }) => m.username === member.username));
        for (const m of own.body.members) assert.equal(m.email, null);
        const one = await app.request('GET', `/gateway/v1/teams/${team}/members/${member.username}`, { key: k });
        assert.equal(one.status, 200, one.text);
        assert.equal(one.body.email, null);
        assert.ok(!own.text.includes('@') && !one.text.includes('@'), 'no email address anywhere');
        const list = await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: k });
        assert.equal(list.status, 200, list.text);
        assert.deepEqual(list.body.teams.map((t: { name: string }) => t.name), [team]);

        // Another team of the same organization does not exist for it.
        const attempts: Array<[string, string, unknown?]> = [
          ['GET', `/gateway/v1/teams/${other}`],
          ['GET', `/gateway/v1/teams/${other}/members/${outsider.username}`],
          ['PUT', `/gateway/v1/teams/${other}/members/${member.username}`, { role: 'admin' }],
          ['DELETE', `/gateway/v1/teams/${other}/members/${outsider.username}`],
        ];
        for (const [method, path, body] of attempts) {
          const r = await app.request(method, path, { key: k, body });
          assert.equal(r.status, 404, `${sa.scope}: ${method} ${path} → ${r.status} ${r.text}`);
          assert.equal(r.body.error.code, 'not_found');
          assert.ok(!r.text.includes(outsider.username) || r.body.error.message.includes(outsider.username));
        }
        // The organization's people, keys and service accounts: refused whatever is named, so nothing is told.
        const nobody = '00000000-0000-4000-8000-000000000000';
        const refused = [
          `/gateway/v1/orgs/${org}/users/${outsider.username}`,
          `/gateway/v1/orgs/${org}/users/no-such-user`,
          `/gateway/v1/orgs/${org}`,
          `/gateway/v1/keys/${sa.key.id}`,
          `/gateway/v1/keys/${nobody}`,
          `/gateway/v1/service-accounts/${sa.id}`,
          `/gateway/v1/service-accounts/${nobody}`,
          `/gateway/v1/teams/${other}/service-accounts`,
          `/gateway/v1/teams/no-such-team/service-accounts`,
        ];
        for (const path of refused) {
          const r = await app.request('GET', path, { key: k });
          assert.equal(r.status, 403, `${path}: ${r.text}`);
          assert.ok(!r.text.includes('@'));
        }
      }
      // A person of the organization still sees every team and the emails of its members.
      const seen = await app.request('GET', `/gateway/v1/teams/${other}`, { key: member.key });
      assert.equal(seen.status, 200);
      assert.match(seen.body.members[0].email, /@/);
      assert.ok((await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: member.key })).body.teams.length >= 2);
    });

    test('roles: a member cannot create or see keys, an outsider cannot see it at all, a team admin manages keys, an org admin everything', async () => {
      assert.equal((await create(member.key)).status, 403);
      const sa = (await create(teamAdmin.key, { name: 'keys demo' })).body;

      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}`, { key: member.key })).status, 200, 'a team member sees it');
      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: member.key })).status, 403, 'but not its keys');
      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}`, { key: outsider.key })).status, 404);
      assert.equal((await app.request('GET', `/gateway/v1/teams/${team}/service-accounts`, { key: outsider.key })).status, 403);

      const second = await app.request('POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: teamAdmin.key, body: { name: 'second' } });
      assert.equal(second.status, 201, second.text);
      assert.match(second.body.key, /^tgs-/);
      const keys = await app.request('GET', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: teamAdmin.key });
      assert.equal(keys.status, 200);
      assert.deepEqual(keys.body.keys.map((k: { name: string }) => k.name).sort(), ['default', 'second']);
      assert.ok(!keys.text.includes(second.body.key));

      assert.equal((await app.request('GET', `/gateway/v1/keys/${second.body.id}`, { key: teamAdmin.key })).status, 200);
      assert.equal((await app.request('GET', `/gateway/v1/keys/${second.body.id}`, { key: member.key })).status, 404, 'a member does not see a service account key');
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${second.body.id}`, { key: member.key })).status, 404);

      // Rotate through the shared key endpoints, as the team admin.
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: second.body.key })).status, 200);
      const rot = await app.request('POST', `/gateway/v1/keys/${second.body.id}/rotate`, { key: teamAdmin.key, body: { grace_seconds: 0 } });
      assert.equal(rot.status, 201, rot.text);
      assert.match(rot.body.key, /^tgs-/);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: second.body.key })).status, 401, 'rotated away at once');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: rot.body.key })).status, 200);

      // The org admin revokes it.
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${rot.body.id}`, { key: adminKey })).status, 204);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: rot.body.key })).status, 401);
    });

    test('rename keeps the username; delete revokes every key at once', async () => {
      const sa = (await create(teamAdmin.key, { name: 'short lived', username: `short-lived-${dialect}` })).body;
      assert.equal(sa.username, `short-lived-${dialect}`);
      const extra = (await app.request('POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: teamAdmin.key, body: { name: 'extra' } })).body;
      for (const k of [sa.key.key, extra.key]) assert.equal((await app.request('GET', '/gateway/v1/me', { key: k })).status, 200);

      assert.equal((await app.request('PATCH', `/gateway/v1/service-accounts/${sa.id}`, { key: member.key, body: { name: 'nope' } })).status, 403);
      const renamed = await app.request('PATCH', `/gateway/v1/service-accounts/${sa.id}`, { key: teamAdmin.key, body: { name: 'Renamed' } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.name, 'Renamed');
      assert.equal(renamed.body.username, sa.username);

      assert.equal((await app.request('DELETE', `/gateway/v1/service-accounts/${sa.id}`, { key: teamAdmin.key })).status, 204);
      for (const k of [sa.key.key, extra.key]) assert.equal((await app.request('GET', '/gateway/v1/me', { key: k })).status, 401);
      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}`, { key: adminKey })).status, 404);
      // Its name is free again.
      assert.equal((await create(teamAdmin.key, { name: 'again', username: `short-lived-${dialect}` })).status, 201);

      const audit = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=100`, { key: adminKey });
      const actions = audit.body.events.filter((e: { target: { id: string } }) => e.target.id === sa.id).map((e: { action: string }) => e.action);
      for (const a of ['service_account.create', 'service_account.rename', 'service_account.delete']) assert.ok(actions.includes(a), a);
      assert.ok(!audit.text.includes(sa.key.key));
    });

    test('usernames share the entity namespace', async () => {
      const r = await create(teamAdmin.key, { name: 'clash', username: member.username });
      assert.equal(r.status, 409);
      assert.match(r.body.error.message, /already taken/);
      const bad = await create(teamAdmin.key, { name: 'x', username: 'Not Valid' });
      assert.equal(bad.status, 400);
    });

    test('organization-scoped service accounts: org admins only, with a default team', async () => {
      const body = { name: 'org bot', default_team: team };
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/service-accounts`, { key: teamAdmin.key, body })).status, 403);
      const r = await app.request('POST', `/gateway/v1/orgs/${org}/service-accounts`, { key: adminKey, body });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body.scope, 'org');
      assert.equal(r.body.team, team);
      assert.equal((await app.request('POST', `/gateway/v1/service-accounts/${r.body.id}/keys`, { key: teamAdmin.key, body: { name: 'x' } })).status, 403, 'team admins do not manage organization-scoped accounts');
      const missing = await app.request('POST', `/gateway/v1/orgs/${org}/service-accounts`, { key: adminKey, body: { name: 'x', default_team: 'no-such-team' } });
      assert.equal(missing.status, 400);
      const all = await app.request('GET', `/gateway/v1/orgs/${org}/service-accounts`, { key: adminKey });
      assert.equal(all.status, 200);
      assert.ok(all.body.service_accounts.some((x: { id: string }) => x.id === r.body.id));
      assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/service-accounts`, { key: member.key })).status, 403);
    });

    test('an organization that is not on the enterprise plan gets 403 saying it is an enterprise feature', async () => {
      const std = await app.bootstrap({ plan: 'standard' });
      const t = `std-${std.org}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${std.org}/teams`, { key: std.adminKey, body: { name: t } })).status, 201);
      const r = await create(std.adminKey, { name: 'nope' }, t);
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'enterprise_feature');
      assert.match(r.body.error.message, /enterprise feature/);
      const o = await app.request('POST', `/gateway/v1/orgs/${std.org}/service-accounts`, { key: std.adminKey, body: { name: 'nope', default_team: t } });
      assert.equal(o.status, 403);
      assert.match(o.body.error.message, /enterprise feature/);
      // A team of another organization does not exist for this admin.
      assert.equal((await create(std.adminKey, { name: 'x' }, team)).status, 404);
    });

    test('the OpenAPI document describes the service-account endpoints', async () => {
      const r = await app.request('GET', '/gateway/v1/openapi.json');
      assert.equal(r.status, 200);
      for (const p of ['/gateway/v1/teams/{team}/service-accounts', '/gateway/v1/service-accounts/{id}', '/gateway/v1/service-accounts/{id}/keys', '/gateway/v1/orgs/{org}/service-accounts']) {
        assert.ok(r.body.paths[p], p);
      }
      assert.ok(r.body.paths['/gateway/v1/teams/{team}/service-accounts'].post);
    });
  });
}
