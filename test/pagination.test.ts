/**
 * Issue 13, "Low: no cap on keys / paginate every list": every list that can
 * grow answers a page (`limit`, opaque `cursor`, `next_cursor`), keyset-based,
 * so a walk sees every item once even while items are added; a bad limit or
 * cursor is a 400 naming the parameter; old clients (no parameters) get the
 * first page under the list's usual field name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { signIn, textOf } from './support/web.ts';

for (const dialect of dialects()) {
  describe(`pagination of list endpoints (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let team: string;
    let saId: string;
    const usernames: string[] = [];
    before(async () => {
      app = await startApp(dialect, { maxKeysPerPrincipal: 100 });
      ({ org, adminKey } = await app.bootstrap());
      team = `pg-${org}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      for (let i = 0; i < 12; i++) {
        const u = await app.createUser({ org, username: `u${String(i).padStart(2, '0')}-${org}` });
        usernames.push(u.username);
        assert.equal((await app.request('PUT', `/gateway/v1/teams/${team}/members/${u.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
      }
      for (let i = 0; i < 6; i++) assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: `t${i}-${org}` } })).status, 201);
      for (let i = 0; i < 7; i++) {
        const sa = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name: `bot ${i}` } });
        assert.equal(sa.status, 201, sa.text);
        saId = sa.body.id;
      }
      for (let i = 0; i < 6; i++) assert.equal((await app.request('POST', `/gateway/v1/service-accounts/${saId}/keys`, { key: adminKey, body: { name: `sk${i}` } })).status, 201);
      for (let i = 0; i < 11; i++) assert.equal((await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `mk${i}` } })).status, 201);
    });
    after(() => app.close());

    /** Walks a list page by page; returns every item and the number of pages. */
    async function walk(path: string, field: string, limit: number, onPage?: (n: number) => Promise<void>): Promise<{ items: any[]; pages: number }> {
      const items: any[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const sep = path.includes('?') ? '&' : '?';
        const r: { status: number; body: any; text: string } = await app.request('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { key: adminKey });
        assert.equal(r.status, 200, `${path}: ${r.text}`);
        assert.ok(Array.isArray(r.body[field]), `${path} answers its list under "${field}"`);
        assert.ok(r.body[field].length <= limit);
        assert.ok('next_cursor' in r.body);
        items.push(...r.body[field]);
        cursor = r.body.next_cursor;
        if (cursor !== null) assert.equal(r.body[field].length, limit, 'only the last page is short');
        pages++;
        if (onPage) await onPage(pages);
        assert.ok(pages < 100, 'the walk ends');
      } while (cursor !== null);
      return { items, pages };
    }

    const lists: Array<{ label: string; path: () => string; field: string; id: string; min: number }> = [
      { label: 'GET /me/keys', path: () => '/gateway/v1/me/keys', field: 'keys', id: 'id', min: 12 },
      { label: 'GET /orgs/:org/users', path: () => `/gateway/v1/orgs/${org}/users`, field: 'users', id: 'username', min: 13 },
      { label: 'GET /orgs/:org/teams', path: () => `/gateway/v1/orgs/${org}/teams`, field: 'teams', id: 'name', min: 7 },
      { label: 'GET /teams/:team (members)', path: () => `/gateway/v1/teams/${team}`, field: 'members', id: 'username', min: 13 },
      { label: 'GET /teams/:team/service-accounts', path: () => `/gateway/v1/teams/${team}/service-accounts`, field: 'service_accounts', id: 'id', min: 7 },
      { label: 'GET /orgs/:org/service-accounts', path: () => `/gateway/v1/orgs/${org}/service-accounts`, field: 'service_accounts', id: 'id', min: 7 },
      { label: 'GET /service-accounts/:id/keys', path: () => `/gateway/v1/service-accounts/${saId}/keys`, field: 'keys', id: 'id', min: 7 },
      { label: 'GET /orgs/:org/audit', path: () => `/gateway/v1/orgs/${org}/audit`, field: 'events', id: 'id', min: 40 },
    ];

    for (const l of lists) {
      test(`${l.label}: walked 5 at a time, every item exactly once, in the order of the unpaged list`, async () => {
        const whole = await app.request('GET', l.path(), { key: adminKey });
        assert.equal(whole.status, 200, whole.text);
        assert.ok(whole.body[l.field].length >= l.min, `at least ${l.min} items (${whole.body[l.field].length})`);
        assert.equal(whole.body.next_cursor, null, 'without limit: the first page (default 100), here the whole list');
        const { items, pages } = await walk(l.path(), l.field, 5);
        assert.ok(pages >= 2);
        const ids = items.map((x) => x[l.id]);
        assert.equal(new Set(ids).size, ids.length, 'no duplicates');
        assert.deepEqual(ids, whole.body[l.field].map((x: any) => x[l.id]), 'no gaps, same order');
      });
    }

    test('items inserted during a walk neither repeat nor shift the items already there (keyset, not offset)', async () => {
      const before = (await app.request('GET', '/gateway/v1/me/keys?limit=500', { key: adminKey })).body.keys.map((k: any) => k.id);
      let added = 0;
      const { items } = await walk('/gateway/v1/me/keys', 'keys', 4, async () => {
        // A new key on every page: it sorts after every existing one (newest), so the walk meets it at the end.
        const r = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `during-walk-${added++}` } });
        assert.equal(r.status, 201);
      });
      const ids = items.map((k) => k.id);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      for (const id of before) assert.ok(ids.includes(id), 'every key that existed is seen');
      // Audit events are newest first, and each key creation adds one: a walk of the audit log while it grows.
      const seen = await walk(`/gateway/v1/orgs/${org}/audit`, 'events', 7, async () => {
        await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `during-audit-walk-${added++}` } });
      });
      const eventIds = seen.items.map((e) => e.id);
      assert.equal(new Set(eventIds).size, eventIds.length, 'no audit event twice, although new ones arrived at the head');
    });

    test('a bad limit or cursor is a 400 naming the parameter', async () => {
      const bad: Array<[string, RegExp]> = [
        ['/gateway/v1/me/keys?limit=0', /limit/],
        ['/gateway/v1/me/keys?limit=501', /limit.*at most 500/],
        ['/gateway/v1/me/keys?limit=ten', /limit/],
        ['/gateway/v1/me/keys?cursor=not-a-cursor', /cursor/],
        ['/gateway/v1/me/keys?cursor=%22%3B%20drop%20table%20api_keys', /cursor/],
        [`/gateway/v1/me/keys?cursor=${Buffer.from(JSON.stringify(['keys', 1, 2])).toString('base64url')}`, /cursor/],
        [`/gateway/v1/me/keys?cursor=${Buffer.from(JSON.stringify(['keys', 'a'])).toString('base64url')}`, /cursor/],
        [`/gateway/v1/me/keys?cursor=${'A'.repeat(5000)}`, /cursor/],
        [`/gateway/v1/orgs/${org}/users?limit=-3`, /limit/],
        [`/gateway/v1/orgs/${org}/audit?cursor=zzz`, /cursor/],
        [`/gateway/v1/orgs/${org}/audit?before=abc`, /before/],
      ];
      for (const [path, re] of bad) {
        const r = await app.request('GET', path, { key: adminKey });
        assert.equal(r.status, 400, `${path}: ${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'validation_failed');
        assert.match(r.body.error.message, re, path);
      }
      // A cursor of one list is not one of another (users are by username too, but the cursor says which list it is from).
      const users = await app.request('GET', `/gateway/v1/orgs/${org}/users?limit=2`, { key: adminKey });
      const r = await app.request('GET', `/gateway/v1/orgs/${org}/teams?cursor=${users.body.next_cursor}`, { key: adminKey });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /cursor: is not a cursor of this list/);
    });

    test('the audit log keeps its old paging: before=<seq> and before=<next_cursor> still work', async () => {
      const first = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=3`, { key: adminKey });
      assert.equal(first.status, 200);
      const viaCursor = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=3&cursor=${first.body.next_cursor}`, { key: adminKey });
      const viaBefore = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=3&before=${first.body.next_cursor}`, { key: adminKey });
      const viaSeq = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=3&before=${first.body.events.at(-1).cursor}`, { key: adminKey });
      for (const r of [viaBefore, viaSeq]) {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body.events.map((e: any) => e.id), viaCursor.body.events.map((e: any) => e.id));
      }
    });

    test('the OpenAPI document declares limit and cursor, and next_cursor, on every paginated list', async () => {
      const doc = (await (await fetch(app.url + '/gateway/v1/openapi.json')).json()) as any;
      for (const p of ['/me/keys', '/orgs/{org}/users', '/orgs/{org}/teams', '/teams/{team}', '/teams/{team}/service-accounts', '/orgs/{org}/service-accounts', '/service-accounts/{id}/keys', '/orgs/{org}/audit']) {
        const op = doc.paths[`/gateway/v1${p}`]?.get;
        assert.ok(op, `${p} documented`);
        const names = (op.parameters ?? []).filter((x: any) => x.in === 'query').map((x: any) => x.name);
        assert.ok(names.includes('limit') && names.includes('cursor'), `${p}: query parameters ${names.join(',')}`);
        assert.ok(JSON.stringify(op.responses['200']).includes('next_cursor'), `${p}: next_cursor in its 200`);
      }
    });

    test('the web pages that show these lists still work (settings, team, admin with its audit pager)', async () => {
      const admin = await app.request('GET', '/gateway/v1/me', { key: adminKey });
      const b = await signIn(app, admin.body.email);
      const settings = await b.get('/settings');
      assert.equal(settings.status, 200);
      assert.match(textOf(settings.text), /mk10/);
      const teamPage = await b.get(`/teams/${team}`);
      assert.equal(teamPage.status, 200);
      for (const u of usernames) assert.ok(teamPage.text.includes(u), `member ${u} shown`);
      assert.match(textOf(teamPage.text), /bot 6/);
      const adminPage = await b.get('/admin');
      assert.equal(adminPage.status, 200);
      for (const u of usernames) assert.ok(adminPage.text.includes(u), `user ${u} shown`);
      const older = /href="(\/admin\?before=\d+#audit)"/.exec(adminPage.text);
      assert.ok(older, 'the audit pager links to older events');
      const page2 = await b.get(older[1]!.replace(/#.*/, ''));
      assert.equal(page2.status, 200);
      assert.match(textOf(page2.text), /Newest/);
    });
  });
}
