import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { rawRequest } from './support/net.ts';

for (const dialect of dialects()) {
  describe(`bad input (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    const expect4xx = async (method: string, path: string, opts: { body?: unknown; rawBody?: string; headers?: Record<string, string> }, status: number, pattern: RegExp) => {
      const r = await app.request(method, path, { key: adminKey, ...opts });
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.match(r.body.error.message, pattern, r.body.error.message);
      assert.ok(r.body.error.code);
      assert.ok(r.body.error.request_id);
      return r;
    };

    test('malformed JSON', async () => {
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { rawBody: '{"name": ', headers: { 'content-type': 'application/json' } }, 400, /malformed JSON/);
    });

    test('wrong types, missing and unknown fields, over-long strings, bad roles', async () => {
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 42 } }, 400, /name/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: {} }, 400, /name/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'ok-team', admin: true } }, 400, /unknown field "admin"/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'x'.repeat(65) } }, 400, /at most 64/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: 'Has Spaces' } }, 400, /lowercase/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'x'.repeat(101) } }, 400, /name: must be at most 100/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'k', expires_in_days: 'soon' } }, 400, /expires_in_days/);
      await expect4xx('POST', '/gateway/v1/me/keys', { body: { name: 'k', expires_in_days: -1 } }, 400, /expires_in_days/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'not-an-email', username: 'someone' } }, 400, /email/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'a@b.example', username: 'someone', role: 'owner' } }, 400, /role: must be one of admin, member, viewer/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: 'UPPER', name: 'x', plan: 'standard' } }, 400, /slug/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: 'fine-slug', name: 'x', plan: 'gold' } }, 400, /plan: must be standard or enterprise/);
      await expect4xx('PATCH', `/gateway/v1/orgs/${org}/users/${org}-admin`, { body: {} }, 400, /nothing to change/);
      await expect4xx('POST', `/gateway/v1/keys/00000000-0000-0000-0000-000000000000/rotate`, { body: { grace_seconds: 1.5 } }, 400, /grace_seconds/);
      await expect4xx('GET', `/gateway/v1/orgs/${org}/audit?limit=abc`, {}, 400, /limit/);
      await expect4xx('GET', `/gateway/v1/orgs/${org}/audit?evil=1`, {}, 400, /unknown field "evil"/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { rawBody: '[1,2]', headers: { 'content-type': 'application/json' } }, 400, /body/);
    });

    test('duplicates answer 409 and nothing is half-written', async () => {
      const u = await app.request('POST', `/gateway/v1/orgs/${org}/users`, { key: adminKey, body: { email: 'dup@example.com', username: `dup-${dialect}`, role: 'member' } });
      assert.equal(u.status, 201, u.text);
      // Same username, new email: no user with the new email may appear.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'fresh@example.com', username: `dup-${dialect}` } }, 409, /already taken/);
      // Same email, new username: the username must stay free.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'dup@example.com', username: `fresh-${dialect}` } }, 409, /email "dup@example.com" already exists/);
      await expect4xx('POST', `/gateway/v1/orgs/${org}/users`, { body: { email: 'DUP@example.com', username: `fresh2-${dialect}` } }, 409, /already exists/);
      const users = (await app.request('GET', `/gateway/v1/orgs/${org}/users`, { key: adminKey })).body.users;
      assert.ok(!users.some((x: any) => x.email === 'fresh@example.com'));
      assert.ok(!users.some((x: any) => x.username === `fresh-${dialect}`));
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: `fresh-${dialect}` } })).status, 201, 'the name was not left claimed');
      // A team may not take a username, and the other way round: they share one namespace.
      await expect4xx('POST', `/gateway/v1/orgs/${org}/teams`, { body: { name: `dup-${dialect}` } }, 409, /already taken/);
      await expect4xx('POST', '/gateway/v1/orgs', { body: { slug: org, name: 'again', plan: 'standard' } }, 409, /already exists/);
      // The audit log shows only what happened.
      const audit = (await app.request('GET', `/gateway/v1/orgs/${org}/audit`, { key: adminKey })).body.events;
      assert.equal(audit.filter((e: any) => e.action === 'user.create').length, 1);
    });

    test('a user or team of another organization', async () => {
      const other = await app.bootstrap({ org: `other-${dialect}` });
      const otherTeam = `other-team-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/other-${dialect}/teams`, { key: other.adminKey, body: { name: otherTeam } })).status, 201);
      const myTeam = `my-team-${dialect}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: myTeam } })).status, 201);
      // A user of the other organization cannot be added to my team…
      const r = await app.request('PUT', `/gateway/v1/teams/${myTeam}/members/${other.admin}`, { key: adminKey, body: { role: 'member' } });
      assert.equal(r.status, 404);
      assert.match(r.body.error.message, /user/);
    });

    test('unknown paths and methods', async () => {
      const r = await app.request('GET', '/gateway/v1/nope', { key: adminKey });
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'not_found');
    });

    test('oversized body is refused, the process keeps serving', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(200_000) });
      const r = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, rawBody: big, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 413);
      assert.equal((await fetch(app.url + '/healthz')).status, 200);
    });

    test('garbage on the wire does not crash the process', async () => {
      assert.match(await rawRequest(app.url, 'NOT HTTP AT ALL\r\n\r\n'), /400/);
      assert.match(await rawRequest(app.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /431/);
      assert.equal((await fetch(app.url + '/healthz')).status, 200);
    });
  });
}
