/**
 * SCIM tokens and the discovery endpoints (issue 16), over HTTP: org admins create (the secret shown
 * once, stored hashed), list and revoke them, on the API and on the admin page; a token can do SCIM and
 * nothing else, and nothing but a live SCIM token opens /scim; revocation is immediate on every
 * instance (tokens are not cached); ServiceProviderConfig, ResourceTypes and Schemas answer RFC 7644's
 * shapes, under /scim/v2 and /scim alike.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:http';
import { sql } from 'kysely';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { freePort } from './support/net.ts';
import { ERROR_SCHEMA, LIST_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, assertScimError, scimClient, scimClientFor } from './support/scim.ts';
import { signIn, textOf, WebBrowser } from './support/web.ts';
import { hashSecret } from '../src/crypto/tokens.ts';

const TOKEN = /tgscim-[A-Za-z0-9]{40}/g;
const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`SCIM tokens and discovery (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let org = '';
    let adminKey = '';
    let adminEmail = '';
    let memberKey = '';
    let otherOrg = '';
    /** An admin of another organization who is not the instance operator (the operator sees every organization). */
    let otherAdminKey = '';

    const api = (method: string, path: string, key: string | null, body?: unknown) => app.request(method, `/gateway/v1${path}`, { key, ...(body === undefined ? {} : { body }) });
    const raw = (path: string, headers: Record<string, string>) => app.request('GET', path, { headers });

    before(async () => {
      const port = await freePort();
      app = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}` });
      const b = await app.bootstrap({ org: `scimtok-${tag}` });
      org = b.org;
      adminKey = b.adminKey;
      adminEmail = `admin@${org}.example`;
      memberKey = (await app.createUser({ org, username: `mem-${tag}`, role: 'member' })).key;
      otherOrg = (await app.bootstrap({ org: `scimother-${tag}` })).org;
      otherAdminKey = (await app.createUser({ org: otherOrg, username: `oadm-${tag}`, role: 'admin' })).key;
    });
    after(() => app.close());

    test('create, list, revoke on the API: the secret once, the base URL, audited', async () => {
      const created = await api('POST', `/orgs/${org}/scim/tokens`, adminKey, { name: 'okta' });
      assert.equal(created.status, 201, created.text);
      const token: string = created.body.token;
      app.keys.add(token);
      assert.match(token, /^tgscim-[A-Za-z0-9]{40}$/);
      assert.ok(token.startsWith(created.body.token_id), 'the token ID is the token\'s prefix');
      assert.equal(created.body.name, 'okta');
      assert.equal(created.body.base_url, `${app.url}/scim/v2`);
      assert.equal(created.body.last_used_at, null);

      const list = await api('GET', `/orgs/${org}/scim/tokens`, adminKey);
      assert.equal(list.status, 200);
      assert.equal(list.body.base_url, `${app.url}/scim/v2`);
      const listed = list.body.tokens.find((t: { id: string }) => t.id === created.body.id);
      assert.deepEqual(Object.keys(listed).sort(), ['created_at', 'id', 'last_used_at', 'name', 'token_id']);
      assert.equal(list.text.match(TOKEN), null, 'the list never shows a secret');

      // Stored hashed: no row of any table that could hold it holds the token; the hash is SHA-256 of it.
      const db = app.gw.core.database.db;
      const rows = await sql<Record<string, unknown>>`select * from scim_tokens`.execute(db);
      const mine = rows.rows.find((r) => r.id === created.body.id);
      assert.equal(mine?.token_hash, hashSecret(token, 'hex'));
      for (const table of ['scim_tokens', 'audit_events', 'sessions']) {
        const all = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db);
        for (const r of all.rows) assert.ok(!JSON.stringify(r).includes(token.slice(7)), `no row of ${table} contains the token`);
      }

      // It works, and its use shows up as last use (written in the background, at most once a minute).
      const scim = scimClient(app, token);
      assert.equal((await scim.request('GET', '/ServiceProviderConfig')).status, 200);
      let lastUsed: string | null = null;
      for (let i = 0; i < 40 && lastUsed === null; i++) {
        await sleep(50);
        lastUsed = (await api('GET', `/orgs/${org}/scim/tokens`, adminKey)).body.tokens.find((t: { id: string }) => t.id === created.body.id).last_used_at;
      }
      assert.ok(lastUsed, 'last use recorded');

      const revoked = await api('DELETE', `/orgs/${org}/scim/tokens/${created.body.id}`, adminKey);
      assert.equal(revoked.status, 204, revoked.text);
      assertScimError(await scim.request('GET', '/ServiceProviderConfig'), 401);
      assert.ok(!(await api('GET', `/orgs/${org}/scim/tokens`, adminKey)).body.tokens.some((t: { id: string }) => t.id === created.body.id), 'a revoked token is not listed');
      // Twice: the second finds nothing to revoke.
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${created.body.id}`, adminKey)).status, 404);

      const audit = await api('GET', `/orgs/${org}/audit?action=scim.token.create`, adminKey);
      const createEvent = audit.body.events.find((e: { target: { id: string } }) => e.target.id === created.body.id);
      assert.ok(createEvent, 'scim.token.create audited');
      assert.equal(createEvent.target.type, 'scim_token');
      assert.equal(createEvent.details.token_id, created.body.token_id);
      const revokeEvents = (await api('GET', `/orgs/${org}/audit?action=scim.token.revoke`, adminKey)).body.events.filter((e: { target: { id: string } }) => e.target.id === created.body.id);
      assert.equal(revokeEvents.length, 1, 'scim.token.revoke audited once');
    });

    test('only the organization\'s admins: a member gets 403, another organization\'s admin 404', async () => {
      const mine = await api('POST', `/orgs/${org}/scim/tokens`, adminKey, { name: 'for-roles' });
      assert.equal(mine.status, 201);
      app.keys.add(mine.body.token);

      assert.equal((await api('GET', `/orgs/${org}/scim/tokens`, memberKey)).status, 403);
      assert.equal((await api('POST', `/orgs/${org}/scim/tokens`, memberKey, { name: 'x' })).status, 403);
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${mine.body.id}`, memberKey)).status, 403);

      assert.equal((await api('GET', `/orgs/${org}/scim/tokens`, otherAdminKey)).status, 404);
      assert.equal((await api('POST', `/orgs/${org}/scim/tokens`, otherAdminKey, { name: 'x' })).status, 404);
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${mine.body.id}`, otherAdminKey)).status, 404);
      // Through its own organization's path, another organization's token id is unknown.
      assert.equal((await api('DELETE', `/orgs/${otherOrg}/scim/tokens/${mine.body.id}`, otherAdminKey)).status, 404);
      assert.equal((await api('GET', `/orgs/${org}/scim/tokens`, null)).status, 401);

      // Still live after all that.
      assert.equal((await scimClient(app, mine.body.token).request('GET', '/ServiceProviderConfig')).status, 200);
      // Bad names are 400s naming the field.
      const bad = await api('POST', `/orgs/${org}/scim/tokens`, adminKey, { name: '' });
      assert.equal(bad.status, 400, bad.text);
      assert.equal((await api('POST', `/orgs/${org}/scim/tokens`, adminKey, { name: 'x', org_id: 'y' })).status, 400);
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${mine.body.id}`, adminKey)).status, 204);
    });

    test('at most 5 live tokens per organization; revoking one makes room', async () => {
      const limited = (await app.bootstrap({ org: `scimlim-${tag}` })) as { org: string; adminKey: string };
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await api('POST', `/orgs/${limited.org}/scim/tokens`, limited.adminKey, { name: `t${i}` });
        assert.equal(r.status, 201, r.text);
        app.keys.add(r.body.token);
        ids.push(r.body.id);
      }
      const sixth = await api('POST', `/orgs/${limited.org}/scim/tokens`, limited.adminKey, { name: 't5' });
      assert.equal(sixth.status, 409, sixth.text);
      assert.equal(sixth.body.error.code, 'key_limit_reached');
      assert.equal((await api('GET', `/orgs/${limited.org}/scim/tokens`, limited.adminKey)).body.tokens.length, 5, 'nothing half-made');
      // Another organization's count is its own.
      const elsewhere = await api('POST', `/orgs/${org}/scim/tokens`, adminKey, { name: 'elsewhere' });
      assert.equal(elsewhere.status, 201);
      app.keys.add(elsewhere.body.token);
      assert.equal((await api('DELETE', `/orgs/${limited.org}/scim/tokens/${ids[0]}`, limited.adminKey)).status, 204);
      const again = await api('POST', `/orgs/${limited.org}/scim/tokens`, limited.adminKey, { name: 't5' });
      assert.equal(again.status, 201, again.text);
      app.keys.add(again.body.token);
    });

    test('revocation is immediate on a second instance sharing the database (tokens are not cached)', async () => {
      const port = await freePort();
      const second = await startApp(dialect, { port, publicUrl: `http://127.0.0.1:${port}` }, { shareWith: app });
      try {
        const created = await scimClientFor(app, org, adminKey, { name: 'two-instances' });
        second.keys.add(created.token);
        const onSecond = scimClient(second, created.token);
        const onFirst = scimClient(app, created.token);
        // Used on both (so that any cache would now hold it), then revoked on the first.
        for (let i = 0; i < 3; i++) {
          assert.equal((await onSecond.request('GET', '/ServiceProviderConfig')).status, 200);
          assert.equal((await onFirst.request('GET', '/ServiceProviderConfig')).status, 200);
        }
        assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${created.tokenId}`, adminKey)).status, 204);
        assertScimError(await onSecond.request('GET', '/ServiceProviderConfig'), 401);
        assertScimError(await onSecond.request('GET', '/Users'), 401);
        assertScimError(await onFirst.request('GET', '/ServiceProviderConfig'), 401);
      } finally {
        await second.close();
      }
    });

    test('a SCIM token is not an API key, and no API key opens /scim', async () => {
      const { token, tokenId } = await scimClientFor(app, org, adminKey, { name: 'only-scim' });
      for (const authorization of [basic(token), `Bearer ${token}`]) {
        assert.equal((await raw('/auth/verify', { authorization })).status, 401, `/auth/verify with ${authorization.split(' ')[0]}`);
        assert.equal((await raw('/gateway/v1/me', { authorization })).status, 401, `/gateway/v1/me with ${authorization.split(' ')[0]}`);
        assert.equal((await raw(`/gateway/v1/orgs/${org}/scim/tokens`, { authorization })).status, 401, 'nor the token API itself');
      }
      // The organization admin's own API key (instance operator too), whichever way it is sent: 401 in SCIM's shape.
      for (const authorization of [basic(adminKey), `Bearer ${adminKey}`, `Bearer ${memberKey}`]) {
        for (const path of ['/scim/v2/Users', '/scim/Users', '/scim/v2/ServiceProviderConfig']) {
          const r = await raw(path, { authorization });
          assertScimError(r, 401);
          assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
        }
      }
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${tokenId}`, adminKey)).status, 204);
    });

    test('a missing or malformed Authorization is a 401 in SCIM\'s shape with WWW-Authenticate', async () => {
      const { token, tokenId } = await scimClientFor(app, org, adminKey, { name: 'malformed' });
      const lastChar = token.at(-1)!;
      const flipped = token.slice(0, -1) + (lastChar === 'a' ? 'b' : 'a');
      const cases: Array<Record<string, string>> = [
        {},
        { authorization: 'Bearer' },
        { authorization: 'Bearer ' },
        { authorization: 'Bearer tgscim-short' },
        { authorization: `Bearer ${flipped}` },
        { authorization: `Bearer ${token.replace('tgscim-', 'tgp-')}` },
        { authorization: `Bearer ${token}x` },
        { authorization: `Token ${token}` },
        { authorization: 'Basic !!!not-base64' },
        { authorization: `Bearer ${'a'.repeat(5000)}` },
        { authorization: `Bearer ${token}, Bearer ${token}` },
      ];
      for (const headers of cases) {
        const r = await raw('/scim/v2/ServiceProviderConfig', headers);
        assertScimError(r, 401);
        assert.deepEqual(r.body.schemas, [ERROR_SCHEMA]);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm=/, JSON.stringify(headers));
        assert.equal(r.text.match(TOKEN), null);
      }
      assert.equal((await raw('/scim/v2/ServiceProviderConfig', { authorization: `Bearer ${token}` })).status, 200, 'the token itself works');
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${tokenId}`, adminKey)).status, 204);
    });

    test('a body is read only after its SCIM token is checked; errors of the main isolate are SCIM-shaped too', async () => {
      const { token, tokenId } = await scimClientFor(app, org, adminKey, { name: 'bodies' });
      // Headers announcing a 900 KB body, and no body: the refusal comes at once, without waiting for it.
      const answer = await new Promise<{ status: number; body: string; contentType: string }>((resolve, reject) => {
        const u = new URL(app.url);
        const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/scim/v2/Users', headers: { authorization: 'Bearer tgscim-nope', 'content-type': 'application/scim+json', 'content-length': String(900_000) } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: String(res.headers['content-type']) }));
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      assert.equal(answer.status, 401, answer.body);
      assert.match(answer.contentType, /^application\/scim\+json/);
      assert.deepEqual(JSON.parse(answer.body).schemas, [ERROR_SCHEMA]);
      // Over the 1 MB limit with a valid token: 413, in SCIM's shape.
      const big = await fetch(`${app.url}/scim/v2/Users`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' }, body: JSON.stringify({ userName: 'a@b.example', pad: 'x'.repeat(1_100_000) }) });
      const bigBody = (await big.json()) as { schemas: string[]; status: string };
      assert.equal(big.status, 413);
      assert.deepEqual(bigBody.schemas, [ERROR_SCHEMA]);
      assert.equal(bigBody.status, '413');
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${tokenId}`, adminKey)).status, 204);
    });

    test('discovery: ServiceProviderConfig, ResourceTypes, Schemas in RFC 7644 shapes; /scim and /scim/v2 are one endpoint', async () => {
      const scim = await scimClientFor(app, org, adminKey, { name: 'discovery' });
      const base = `${app.url}/scim/v2`;

      const spc = await scim.request('GET', '/ServiceProviderConfig');
      assert.equal(spc.status, 200, spc.text);
      assert.match(spc.headers.get('content-type') ?? '', /^application\/scim\+json/);
      assert.deepEqual(spc.body.schemas, [SPC_SCHEMA]);
      assert.deepEqual(spc.body.patch, { supported: true });
      assert.equal(spc.body.bulk.supported, false);
      assert.deepEqual(spc.body.filter, { supported: true, maxResults: 200 });
      assert.deepEqual(spc.body.changePassword, { supported: false });
      assert.deepEqual(spc.body.sort, { supported: false });
      assert.deepEqual(spc.body.etag, { supported: true });
      assert.equal(spc.body.authenticationSchemes.length, 1);
      assert.equal(spc.body.authenticationSchemes[0].type, 'oauthbearertoken');
      assert.equal(typeof spc.body.authenticationSchemes[0].name, 'string');
      assert.equal(spc.body.meta.location, `${base}/ServiceProviderConfig`);

      const types = await scim.request('GET', '/ResourceTypes');
      assert.equal(types.status, 200);
      assert.deepEqual(types.body.schemas, [LIST_SCHEMA]);
      assert.equal(types.body.totalResults, 2);
      assert.equal(types.body.itemsPerPage, 2);
      assert.equal(types.body.startIndex, 1);
      const byId = new Map(types.body.Resources.map((t: { id: string }) => [t.id, t]));
      assert.deepEqual(byId.get('User'), {
        schemas: [RESOURCE_TYPE_SCHEMA],
        id: 'User',
        name: 'User',
        endpoint: '/Users',
        description: 'A person of the organization',
        schema: USER_SCHEMA,
        schemaExtensions: [],
        meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` },
      });
      assert.equal((byId.get('Group') as { schema: string; endpoint: string }).schema, GROUP_SCHEMA);
      assert.equal((byId.get('Group') as { endpoint: string }).endpoint, '/Groups');
      const one = await scim.request('GET', '/ResourceTypes/Group');
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, byId.get('Group'));
      assertScimError(await scim.request('GET', '/ResourceTypes/Printer'), 404);

      const schemas = await scim.request('GET', '/Schemas');
      assert.equal(schemas.status, 200);
      assert.deepEqual(schemas.body.schemas, [LIST_SCHEMA]);
      assert.equal(schemas.body.totalResults, 2);
      const user = schemas.body.Resources.find((s: { id: string }) => s.id === USER_SCHEMA);
      assert.deepEqual(user.schemas, [SCHEMA_SCHEMA]);
      assert.equal(user.name, 'User');
      assert.equal(user.meta.location, `${base}/Schemas/${USER_SCHEMA}`);
      const attrs = new Map(user.attributes.map((a: { name: string }) => [a.name, a]));
      for (const name of ['userName', 'name', 'displayName', 'emails', 'active', 'groups']) assert.ok(attrs.has(name), `User schema describes ${name}`);
      for (const name of ['phoneNumbers', 'addresses', 'password']) assert.ok(!attrs.has(name), `User schema does not offer ${name}`);
      assert.equal((attrs.get('userName') as { uniqueness: string; caseExact: boolean }).uniqueness, 'server');
      assert.equal((attrs.get('userName') as { caseExact: boolean }).caseExact, false);
      assert.equal((attrs.get('groups') as { mutability: string }).mutability, 'readOnly');
      const group = schemas.body.Resources.find((s: { id: string }) => s.id === GROUP_SCHEMA);
      assert.deepEqual(group.attributes.map((a: { name: string }) => a.name).sort(), ['displayName', 'members']);
      const userByUrn = await scim.request('GET', `/Schemas/${USER_SCHEMA}`);
      assert.equal(userByUrn.status, 200);
      assert.deepEqual(userByUrn.body, user);
      assertScimError(await scim.request('GET', '/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'), 404);

      // A filter on discovery is refused (RFC 7644 §4: 403), so that an IdP never thinks it was applied.
      for (const path of ['/ServiceProviderConfig', '/ResourceTypes', '/Schemas']) assertScimError(await scim.request('GET', `${path}?filter=${encodeURIComponent('id eq "User"')}`), 403);

      // /scim without the version is the same endpoint, with the same answers.
      const unversioned = scimClient(app, scim.token, { prefix: '/scim' });
      for (const path of ['/ServiceProviderConfig', '/ResourceTypes', '/Schemas', '/ResourceTypes/User', '/Users', '/Users?count=1']) {
        const a = await scim.request('GET', path);
        const b = await unversioned.request('GET', path);
        assert.equal(b.status, a.status, path);
        assert.deepEqual(b.body, a.body, path);
      }
      assert.equal((await unversioned.request('GET', '/ServiceProviderConfig')).status, 200);
      // The version segment in another case is the same endpoint too (the /scim mount already matches any case).
      const upper = scimClient(app, scim.token, { prefix: '/SCIM/V2' });
      assert.deepEqual((await upper.request('GET', '/Users?count=1')).body, (await scim.request('GET', '/Users?count=1')).body);
      assert.equal((await api('DELETE', `/orgs/${org}/scim/tokens/${scim.tokenId}`, adminKey)).status, 204);
    });

    test('the OpenAPI document describes /scim/v2 and the token API', async () => {
      const doc = (await (await fetch(app.url + '/gateway/v1/openapi.json')).json()) as any;
      for (const p of ['/scim/v2/Users', '/scim/v2/Users/{id}', '/scim/v2/Groups', '/scim/v2/Groups/{id}', '/scim/v2/ServiceProviderConfig', '/scim/v2/ResourceTypes', '/scim/v2/Schemas']) {
        assert.ok(doc.paths[p], `openapi documents ${p}`);
        for (const op of Object.values(doc.paths[p]) as Array<{ tags: string[]; security: unknown }>) {
          assert.deepEqual(op.tags, ['scim']);
          assert.deepEqual(op.security, [{ scimToken: [] }]);
        }
      }
      assert.ok(doc.paths['/scim/v2/Groups/{id}'].patch.responses['204'], 'group PATCH answers 204');
      assert.equal(doc.components.securitySchemes.scimToken.scheme, 'bearer');
      const tokens = doc.paths['/gateway/v1/orgs/{org}/scim/tokens'];
      assert.ok(tokens?.get && tokens.post, 'the token API');
      assert.ok(doc.paths['/gateway/v1/orgs/{org}/scim/tokens/{id}']?.delete);
      assert.deepEqual(tokens.post.tags, ['scim']);
    });

    test('the admin page: base URL, create (shown once), list, revoke; forms need the CSRF token; members are refused', async () => {
      const admin = await signIn(app, adminEmail);
      const page = await admin.get('/admin');
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.text, /<script>|<style|style="/, 'no inline script or style');
      const text = textOf(page.text);
      assert.match(text, /Provisioning \(SCIM\)/);
      assert.ok(page.text.includes(`<code id="scim-base-url">${app.url}/scim/v2</code>`), 'the base URL');
      assert.match(page.text, /data-copy="scim-base-url"/);
      const countLive = async () => (await api('GET', `/orgs/${org}/scim/tokens`, adminKey)).body.tokens.length as number;
      const before = await countLive();

      // Without the form's CSRF token: refused, nothing made.
      const forged = await admin.post('/admin/scim/tokens', { name: 'forged' });
      assert.equal(forged.status, 403);
      assert.equal(await countLive(), before);

      const created = await admin.post('/admin/scim/tokens', { csrf_token: WebBrowser.csrf(page.text), name: 'okta-page' });
      assert.equal(created.status, 303, created.text.slice(0, 500));
      assert.equal(created.location, '/admin#scim');
      assert.equal(created.text.match(TOKEN), null, 'the redirect carries no secret');
      const shown = await admin.get('/admin');
      const secrets = [...new Set(shown.text.match(TOKEN) ?? [])];
      assert.equal(secrets.length, 1, 'the new token, once');
      const secret = secrets[0]!;
      assert.match(textOf(shown.text), /it will not be shown again/);
      assert.match(shown.text, /data-copy="new-scim-token"/);
      assert.equal((await scimClient(app, secret).request('GET', '/ServiceProviderConfig')).status, 200, 'the token works');
      const rows = await sql<{ data: string }>`select data from sessions`.execute(app.gw.core.database.db);
      for (const r of rows.rows) assert.ok(!r.data.includes(secret), 'no plaintext token in the session store');
      assert.equal(await countLive(), before + 1);

      const again = await admin.get('/admin');
      assert.equal(again.text.match(TOKEN), null, 'shown once');
      const listed = (await api('GET', `/orgs/${org}/scim/tokens`, adminKey)).body.tokens.find((t: { name: string }) => t.name === 'okta-page');
      assert.ok(again.text.includes(`<code>${listed.token_id}</code>`), 'listed by token ID');
      assert.match(textOf(again.text), /okta-page/);

      // A bad name: the page again, with the problem, in the SCIM section; nothing made.
      const bad = await admin.post('/admin/scim/tokens', { csrf_token: WebBrowser.csrf(again.text), name: '' });
      assert.equal(bad.status, 400);
      assert.match(bad.text, /<section class="card" id="scim"[\s\S]*role="alert"/);
      assert.equal(await countLive(), before + 1);

      // A member: the page and the forms are refused, and change nothing.
      const member = await signIn(app, `mem-${tag}@${org}.example`);
      assert.equal((await member.get('/admin')).status, 403);
      const memberCsrf = WebBrowser.csrf((await member.get('/settings')).text);
      assert.equal((await member.post('/admin/scim/tokens', { csrf_token: memberCsrf, name: 'sneaky' })).status, 403);
      assert.equal((await member.post(`/admin/scim/tokens/${listed.id}/revoke`, { csrf_token: memberCsrf })).status, 403);
      assert.equal((await scimClient(app, secret).request('GET', '/ServiceProviderConfig')).status, 200, 'still live');

      const revoked = await admin.post(`/admin/scim/tokens/${listed.id}/revoke`, { csrf_token: WebBrowser.csrf(again.text) });
      assert.equal(revoked.status, 303);
      assert.equal(revoked.location, '/admin#scim');
      assertScimError(await scimClient(app, secret).request('GET', '/ServiceProviderConfig'), 401);
      const after = await admin.get('/admin');
      assert.match(textOf(after.text), /revoked/);
      assert.ok(!after.text.includes(`<code>${listed.token_id}</code>`), 'no longer listed');
      // Revoking it again: not found (the error page), nothing else touched.
      assert.equal((await admin.post(`/admin/scim/tokens/${listed.id}/revoke`, { csrf_token: WebBrowser.csrf(after.text) })).status, 404);

      // The limit, on the page: the sixth is refused next to the form.
      const limited = await app.bootstrap({ org: `scimpage-${tag}` });
      const limitedAdmin = await signIn(app, `admin@${limited.org}.example`);
      for (let i = 0; i < 5; i++) {
        const p = await limitedAdmin.submit('/admin', '/admin/scim/tokens', { name: `p${i}` });
        assert.equal(p.status, 303);
        await limitedAdmin.get('/admin');
      }
      const sixth = await limitedAdmin.submit('/admin', '/admin/scim/tokens', { name: 'p5' });
      assert.equal(sixth.status, 409);
      assert.match(textOf(sixth.text), /5 SCIM tokens; revoke one first/);
      assert.equal(sixth.text.match(TOKEN), null);
    });
  });
}
