/**
 * Issue 13, "Medium: rotation" and the key cap: rotation obeys the key's state
 * and the organization's key policies, a key has at most one successor (also
 * under concurrent requests), and one principal holds a bounded number of live
 * keys (also under a burst of concurrent creations).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Migrator } from 'kysely';
import pg from 'pg';
import { migrateToLatest, openDatabase } from '../src/db/database.ts';
import { migrations } from '../src/db/migrations/index.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { signIn, textOf, WebBrowser } from './support/web.ts';

const CAP = 6;
const DAY = 86_400_000;

for (const dialect of dialects()) {
  describe(`key rotation policy and key cap (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let n = 0;
    before(async () => {
      app = await startApp(dialect, { maxKeysPerPrincipal: CAP });
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    /** A fresh member with one key (their provisioned one), so every test starts far from the cap. */
    const person = async () => app.createUser({ org, username: `p${++n}-${dialect}` });
    const newKey = async (key: string, body: Record<string, unknown> = { name: 'k' }) => {
      const r = await app.request('POST', '/gateway/v1/me/keys', { key, body });
      assert.equal(r.status, 201, r.text);
      return r.body;
    };
    const rotate = (key: string, id: string, body: Record<string, unknown> = { grace_seconds: 0 }) => app.request('POST', `/gateway/v1/keys/${id}/rotate`, { key, body });
    const setPolicies = async (policies: Record<string, unknown>) => {
      const r = await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies } });
      assert.equal(r.status, 200, r.text);
    };
    const liveKeys = async (key: string) => (await app.request('GET', '/gateway/v1/me/keys?limit=500', { key })).body.keys.filter((k: any) => k.expires_at === null || Date.parse(k.expires_at) > Date.now());

    test('an expired key cannot be rotated (409 key_expired) and mints nothing', async () => {
      const u = await person();
      const k = await newKey(u.key, { name: 'short', expires_in_days: 1 });
      await app.gw.core.database.db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', k.id).execute();
      const r = await rotate(u.key, k.id, { grace_seconds: 3600 });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'key_expired');
      assert.match(r.body.error.message, /expired/);
      assert.ok(!r.text.includes('tgp-'), 'no new key in the answer');
      const all = await app.gw.core.database.db.selectFrom('api_keys').select('id').where('rotated_from_id', '=', k.id).execute();
      assert.equal(all.length, 0);
    });

    test('a revoked key cannot be rotated (409 key_revoked)', async () => {
      const u = await person();
      const k = await newKey(u.key);
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: u.key })).status, 204);
      const r = await rotate(u.key, k.id);
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'key_revoked');
      // A key the caller may not manage stays a 404 whatever its state.
      const other = await person();
      assert.equal((await rotate(other.key, k.id)).status, 404);
    });

    test('an already-rotated key (still inside its grace period) cannot be rotated again: one key mints one successor', async () => {
      const u = await person();
      const k = await newKey(u.key, { name: 'ci' });
      const first = await rotate(u.key, k.id, { grace_seconds: 3600 });
      assert.equal(first.status, 201, first.text);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200, 'the old key works during its grace period');
      for (const grace of [3600, 0]) {
        const again = await rotate(u.key, k.id, { grace_seconds: grace });
        assert.equal(again.status, 409, again.text);
        assert.equal(again.body.error.code, 'key_already_rotated');
        assert.ok(again.body.error.message.includes(first.body.id), 'names the replacement');
      }
      // The successor itself can be rotated, once.
      const second = await rotate(u.key, first.body.id, { grace_seconds: 0 });
      assert.equal(second.status, 201, second.text);
      assert.equal(second.body.rotated_from, first.body.id);
    });

    test('concurrent rotations of one key: exactly one 201, the others 409; the database holds one successor', async () => {
      for (const grace of [3600, 0]) {
        const u = await person();
        const k = await newKey(u.key, { name: `race-${grace}` });
        const answers = await Promise.all(Array.from({ length: 8 }, () => rotate(u.key, k.id, { grace_seconds: grace })));
        const statuses = answers.map((a) => a.status).sort();
        assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`);
        for (const a of answers.filter((x) => x.status !== 201)) {
          assert.equal(a.status, 409, a.text);
          assert.ok(['key_already_rotated', 'key_revoked'].includes(a.body.error.code), a.text);
        }
        const successors = await app.gw.core.database.db.selectFrom('api_keys').select('id').where('rotated_from_id', '=', k.id).execute();
        assert.equal(successors.length, 1);
      }
    });

    test('a deactivated user\'s key cannot be rotated, even by an admin (409 owner_deactivated)', async () => {
      const u = await person();
      const k = await newKey(u.key);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/users/${u.username}`, { key: adminKey })).status, 204);
      const r = await rotate(adminKey, k.id, { grace_seconds: 60 });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'owner_deactivated');
    });

    test('the database itself refuses a second successor (unique index on rotated_from_id)', async () => {
      const u = await person();
      const k = await newKey(u.key);
      const first = await rotate(u.key, k.id, { grace_seconds: 60 });
      assert.equal(first.status, 201);
      const row = await app.gw.core.database.db.selectFrom('api_keys').selectAll().where('id', '=', first.body.id).executeTakeFirstOrThrow();
      await assert.rejects(
        app.gw.core.database.db
          .insertInto('api_keys')
          .values({ ...row, id: `${row.id}-dup`, key_hash: `${row.key_hash}-dup` })
          .execute(),
      );
    });

    test('disable_personal_keys: a personal key cannot be rotated (403 personal_keys_disabled), by its owner or an admin', async () => {
      const u = await person();
      const k = await newKey(u.key);
      await setPolicies({ disable_personal_keys: true });
      try {
        for (const who of [u.key, adminKey]) {
          const r = await rotate(who, k.id, { grace_seconds: 60 });
          assert.equal(r.status, 403, r.text);
          assert.equal(r.body.error.code, 'personal_keys_disabled');
        }
        assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200, 'the existing key is untouched');
      } finally {
        await setPolicies({ disable_personal_keys: false });
      }
      assert.equal((await rotate(u.key, k.id)).status, 201, 'allowed again once the policy is lifted');
    });

    test('maximum key lifetime: the successor of a key without expiry gets the maximum; a longer explicit expiry is refused; a shorter one is kept', async () => {
      const u = await person();
      const forever = await newKey(u.key, { name: 'forever' });
      const long = await newKey(u.key, { name: 'long' });
      assert.equal(forever.expires_at, null);
      await setPolicies({ max_key_lifetime_days: 7 });
      try {
        const r = await rotate(u.key, forever.id, { grace_seconds: 0 });
        assert.equal(r.status, 201, r.text);
        const days = (Date.parse(r.body.expires_at) - Date.now()) / DAY;
        assert.ok(days > 6.9 && days <= 7, `capped to 7 days (${days})`);

        const refused = await rotate(u.key, long.id, { grace_seconds: 0, expires_in_days: 30 });
        assert.equal(refused.status, 400, refused.text);
        assert.match(refused.body.error.message, /expires_in_days.*at most 7 days/);
        assert.equal((await app.request('GET', '/gateway/v1/me', { key: long.key })).status, 200, 'a refused rotation leaves the old key as it was');

        const shorter = await rotate(u.key, long.id, { grace_seconds: 0, expires_in_days: 2 });
        assert.equal(shorter.status, 201, shorter.text);
        const d2 = (Date.parse(shorter.body.expires_at) - Date.now()) / DAY;
        assert.ok(d2 > 1.9 && d2 <= 2, `${d2}`);
      } finally {
        await setPolicies({ max_key_lifetime_days: null });
      }
    });

    test('the web page\'s rotate form goes through the same rules (an already-rotated key is refused with the reason)', async () => {
      const u = await person();
      const k = await newKey(u.key, { name: 'web-rotated' });
      assert.equal((await rotate(u.key, k.id, { grace_seconds: 3600 })).status, 201);
      const b = await signIn(app, `${u.username}@${org}.example`);
      const page = await b.get('/settings');
      assert.ok(!page.text.includes(`/settings/keys/${k.id}/rotate`), 'the page offers no Rotate for a key already rotated');
      // Posted anyway (a stale page, a forged form): the service refuses it.
      const r = await b.post(`/settings/keys/${k.id}/rotate`, { csrf_token: WebBrowser.csrf(page.text), grace_seconds: '60' });
      assert.equal(r.status, 409, r.text.slice(0, 300));
      assert.match(textOf(r.text), /already rotated/);
      const successors = await app.gw.core.database.db.selectFrom('api_keys').select('id').where('rotated_from_id', '=', k.id).execute();
      assert.equal(successors.length, 1);
    });

    test('service-account keys: same rotation rules (one successor, expired refused), and disable_personal_keys does not apply to them', async () => {
      const team = `pt-${dialect}-${org}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      const sa = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name: 'rotating bot' } });
      assert.equal(sa.status, 201, sa.text);
      const keyId = sa.body.key.id;
      await setPolicies({ disable_personal_keys: true });
      try {
        const r = await rotate(adminKey, keyId, { grace_seconds: 3600 });
        assert.equal(r.status, 201, r.text);
        const again = await rotate(adminKey, keyId, { grace_seconds: 0 });
        assert.equal(again.status, 409);
        assert.equal(again.body.error.code, 'key_already_rotated');
        await app.gw.core.database.db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', r.body.id).execute();
        const expired = await rotate(adminKey, r.body.id, { grace_seconds: 0 });
        assert.equal(expired.status, 409);
        assert.equal(expired.body.error.code, 'key_expired');
      } finally {
        await setPolicies({ disable_personal_keys: false });
      }
    });

    test(`key cap: a user holds at most ${CAP} live keys; the next create is a 409 naming the cap; revoked and expired keys do not count`, async () => {
      const u = await person(); // one key already
      for (let i = 1; i < CAP; i++) await newKey(u.key, { name: `k${i}` });
      const over = await app.request('POST', '/gateway/v1/me/keys', { key: u.key, body: { name: 'one too many' } });
      assert.equal(over.status, 409, over.text);
      assert.equal(over.body.error.code, 'key_limit_reached');
      assert.match(over.body.error.message, new RegExp(`at most ${CAP} live API keys`));
      const mine = await liveKeys(u.key);
      assert.equal(mine.length, CAP);
      // Rotation with a grace period would hold two live keys for one: refused at the cap; without one it replaces the key.
      const graceful = await rotate(u.key, mine[1].id, { grace_seconds: 60 });
      assert.equal(graceful.status, 409, graceful.text);
      assert.equal(graceful.body.error.code, 'key_limit_reached');
      assert.match(graceful.body.error.message, /grace_seconds 0/);
      const replaced = await rotate(u.key, mine[1].id, { grace_seconds: 0 });
      assert.equal(replaced.status, 201, replaced.text);
      // Freed slots: a revoked key and an expired key no longer count.
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${mine[2].id}`, { key: u.key })).status, 204);
      await app.gw.core.database.db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', mine[3].id).execute();
      await newKey(u.key, { name: 'after revoke' });
      await newKey(u.key, { name: 'after expiry' });
      assert.equal((await app.request('POST', '/gateway/v1/me/keys', { key: u.key, body: { name: 'full again' } })).status, 409);
    });

    test(`key cap under a burst: 30 concurrent creates for one user never overshoot ${CAP}`, async () => {
      const u = await person();
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => app.request('POST', '/gateway/v1/me/keys', { key: u.key, body: { name: `burst-${i}` } })));
      const created = answers.filter((a) => a.status === 201).length;
      for (const a of answers) assert.ok(a.status === 201 || (a.status === 409 && a.body.error.code === 'key_limit_reached'), `${a.status} ${a.text}`);
      assert.equal(created, CAP - 1, 'the provisioned key and exactly the remaining slots');
      const rows = await app.gw.core.database.db.selectFrom('api_keys').select('id').where('owner_type', '=', 'user').where('user_id', 'in', app.gw.core.database.db.selectFrom('users').select('id').where('username', '=', u.username)).where('revoked_at', 'is', null).execute();
      assert.equal(rows.length, CAP);
    });

    test('key cap: a burst of concurrent rotations with grace at the cap does not overshoot either', async () => {
      const u = await person();
      for (let i = 1; i < CAP - 1; i++) await newKey(u.key, { name: `r${i}` });
      const mine = await liveKeys(u.key);
      assert.equal(mine.length, CAP - 1);
      // One free slot; every key rotated at once with a grace period: only one rotation fits.
      const answers = await Promise.all(mine.map((k: any) => rotate(u.key, k.id, { grace_seconds: 600 })));
      assert.equal(answers.filter((a) => a.status === 201).length, 1, answers.map((a) => a.status).join(','));
      assert.equal((await liveKeys(u.key)).length, CAP);
    });

    test('key cap for service accounts: creating keys beyond the cap is refused, also in a burst', async () => {
      const team = `capt-${dialect}-${org}`;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
      const sa = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name: 'capped bot' } });
      assert.equal(sa.status, 201, sa.text);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => app.request('POST', `/gateway/v1/service-accounts/${sa.body.id}/keys`, { key: adminKey, body: { name: `b${i}` } })));
      assert.equal(answers.filter((a) => a.status === 201).length, CAP - 1);
      const refused = answers.find((a) => a.status !== 201)!;
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'key_limit_reached');
      assert.match(refused.body.error.message, /service account may hold at most/);
      const listed = await app.request('GET', `/gateway/v1/service-accounts/${sa.body.id}/keys`, { key: adminKey });
      assert.equal(listed.body.keys.length, CAP);
    });
  });
}

for (const dialect of dialects()) {
  describe(`migration 005 on a database written before it (${dialect})`, () => {
    test('a key rotated twice before the rule keeps its earliest successor linked; the index is then built and holds', async () => {
      let url: string;
      let cleanup: () => Promise<void>;
      if (dialect === 'sqlite') {
        const dir = mkdtempSync(join(tmpdir(), 'trackgate-m005-'));
        url = `sqlite:${join(dir, 'old.db')}`;
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const name = `tg_m005_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
        const admin = new pg.Client({ connectionString: process.env.TRACKGATE_TEST_DATABASE_URL });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.end();
        const u = new URL(process.env.TRACKGATE_TEST_DATABASE_URL!);
        u.pathname = '/' + name;
        url = u.toString();
        cleanup = async () => {
          const c = new pg.Client({ connectionString: process.env.TRACKGATE_TEST_DATABASE_URL });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await c.end();
        };
      }
      const database = openDatabase(url);
      try {
        const all = migrations(database.caps);
        const before005 = Object.fromEntries(Object.entries(all).filter(([n]) => n < '005'));
        const old = new Migrator({ db: database.db, provider: { getMigrations: async () => before005 } });
        const r = await old.migrateToLatest();
        assert.equal(r.error, undefined);
        const db = database.db as any;
        const t = '2026-01-01T00:00:00.000Z';
        await db.insertInto('orgs').values({ id: 'o1', slug: 'm005', name: 'm005', plan: 'standard', created_at: t, updated_at: t }).execute();
        await db.insertInto('users').values({ id: 'u1', org_id: 'o1', email: 'a@m005.example', username: 'm005-a', display_name: 'a', role: 'member', status: 'active', created_at: t, updated_at: t }).execute();
        const key = (id: string, created_at: string, rotated_from_id: string | null) => ({
          id, org_id: 'o1', owner_type: 'user', user_id: 'u1', service_account_id: null, name: id, key_id: id, key_hash: `h-${id}`, created_at, created_by: null, last_used_at: null, expires_at: null, revoked_at: null, rotated_from_id,
        });
        await db.insertInto('api_keys').values([key('k0', t, null), key('k2', '2026-01-03T00:00:00.000Z', 'k0'), key('k1', '2026-01-02T00:00:00.000Z', 'k0'), key('k3', '2026-01-04T00:00:00.000Z', 'k0')]).execute();
        assert.deepEqual(await migrateToLatest(database).then((names) => names.includes('005_key_successor')), true);
        const rows = await db.selectFrom('api_keys').select(['id', 'rotated_from_id']).orderBy('id').execute();
        assert.deepEqual(rows, [{ id: 'k0', rotated_from_id: null }, { id: 'k1', rotated_from_id: 'k0' }, { id: 'k2', rotated_from_id: null }, { id: 'k3', rotated_from_id: null }]);
        await assert.rejects(db.insertInto('api_keys').values(key('k4', t, 'k0')).execute(), 'the unique index refuses a second successor');
      } finally {
        await database.close();
        await cleanup();
      }
    });
  });
}
