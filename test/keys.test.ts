import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

/** Counts the database lookups of the hot paths' key verifier (the main isolate; the real repository still answers them). */
function countKeyLookups(app: TestApp) {
  const repo = app.gw.core.store.repos.keys;
  const original = repo.findByHash.bind(repo);
  const spy = {
    count: 0,
    restore: () => {
      repo.findByHash = original;
    },
  };
  repo.findByHash = (h: string) => {
    spy.count++;
    return original(h);
  };
  return spy;
}

for (const dialect of dialects()) {
  describe(`personal API keys (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    const newKey = async (body: Record<string, unknown> = { name: 'k' }, key = adminKey) => {
      const r = await app.request('POST', '/gateway/v1/me/keys', { key, body });
      assert.equal(r.status, 201, r.text);
      return r.body;
    };

    test('create → list → use → revoke', async () => {
      const k = await newKey({ name: 'laptop' });
      assert.match(k.key, /^tgp-[A-Za-z0-9]{40}$/);
      assert.equal(k.key.split('-').at(-1).length, 40, 'the part after the last dash is exactly 40 characters');
      assert.ok(k.key.startsWith(k.key_id));
      assert.equal(k.name, 'laptop');
      assert.equal(k.expires_at, null);
      for (const f of ['id', 'key', 'key_id', 'name', 'created_at', 'expires_at']) assert.ok(f in k, `create answers ${f}`);

      const me = await app.request('GET', '/gateway/v1/me', { key: k.key });
      assert.equal(me.status, 200);
      assert.equal(me.body.orgs[0].slug, org);

      const list = await app.request('GET', '/gateway/v1/me/keys', { key: adminKey });
      assert.equal(list.status, 200);
      const listed = list.body.keys.find((x: any) => x.id === k.id);
      assert.ok(listed);
      assert.deepEqual(Object.keys(listed).sort(), ['created_at', 'expires_at', 'id', 'key_id', 'last_used_at', 'name', 'owner', 'rotated_from']);
      assert.ok(!list.text.includes(k.key), 'the list never shows a secret');

      const del = await app.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey });
      assert.equal(del.status, 204);
      const gone = await app.request('GET', '/gateway/v1/me', { key: k.key });
      assert.equal(gone.status, 401);
      assert.equal(gone.body.error.code, 'key_revoked');
      assert.ok(gone.headers.get('www-authenticate')?.includes('Basic'));
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey })).status, 404, 'a revoked key cannot be revoked twice');
      assert.ok(!(await app.request('GET', '/gateway/v1/me/keys', { key: adminKey })).body.keys.some((x: any) => x.id === k.id), 'revoked keys leave the list');
    });

    test('the key works as Bearer too', async () => {
      const k = await newKey();
      const r = await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: `Bearer ${k.key}` } });
      assert.equal(r.status, 200);
    });

    test('only a SHA-256 hash is stored', async () => {
      const k = await newKey();
      const row = await app.gw.core.database.db.selectFrom('api_keys').selectAll().where('id', '=', k.id).executeTakeFirstOrThrow();
      const { createHash } = await import('node:crypto');
      assert.equal(row.key_hash, createHash('sha256').update(k.key).digest('hex'));
      assert.ok(!JSON.stringify(row).includes(k.key.slice(4)), 'no column holds the secret');
    });

    test('rotation with a grace deadline: the old key works until it passes, then fails', async () => {
      const k = await newKey({ name: 'ci' });
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200, 'cached before rotation');
      const rot = await app.request('POST', `/gateway/v1/keys/${k.id}/rotate`, { key: adminKey, body: { grace_seconds: 1 } });
      assert.equal(rot.status, 201, rot.text);
      assert.notEqual(rot.body.key, k.key);
      assert.equal(rot.body.name, 'ci');
      assert.equal(rot.body.rotated_from, k.id);
      assert.ok(rot.body.previous.expires_at, 'the old key now has a deadline');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200, 'old key inside the grace period');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: rot.body.key })).status, 200, 'new key works');
      await sleep(1200);
      const old = await app.request('GET', '/gateway/v1/me', { key: k.key });
      assert.equal(old.status, 401, 'old key after the deadline');
      assert.equal(old.body.error.code, 'key_expired');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: rot.body.key })).status, 200);
    });

    test('rotation with grace 0 revokes the old key at once', async () => {
      const k = await newKey();
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200);
      const rot = await app.request('POST', `/gateway/v1/keys/${k.id}/rotate`, { key: adminKey, body: { grace_seconds: 0 } });
      assert.equal(rot.status, 201);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 401);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: rot.body.key })).status, 200);
    });

    test('rotation is refused for an expired, a revoked and an already-rotated key (409 naming why), and mints nothing', async () => {
      const expired = await newKey({ name: 'lapsed', expires_in_days: 1 });
      await app.gw.core.database.db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', expired.id).execute();
      const revoked = await newKey({ name: 'revoked' });
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${revoked.id}`, { key: adminKey })).status, 204);
      const rotated = await newKey({ name: 'rotated' });
      assert.equal((await app.request('POST', `/gateway/v1/keys/${rotated.id}/rotate`, { key: adminKey, body: { grace_seconds: 600 } })).status, 201);
      for (const [k, code] of [[expired, 'key_expired'], [revoked, 'key_revoked'], [rotated, 'key_already_rotated']] as const) {
        const r = await app.request('POST', `/gateway/v1/keys/${k.id}/rotate`, { key: adminKey, body: { grace_seconds: 600 } });
        assert.equal(r.status, 409, r.text);
        assert.equal(r.body.error.code, code);
      }
      const successors = await app.gw.core.database.db.selectFrom('api_keys').select('rotated_from_id').where('rotated_from_id', 'in', [expired.id, revoked.id, rotated.id]).execute();
      assert.equal(successors.length, 1, 'only the one legitimate rotation left a successor');
    });

    test('two concurrent rotations of one key: exactly one 201', async () => {
      const k = await newKey({ name: 'raced' });
      const [a, b] = await Promise.all([0, 1].map(() => app.request('POST', `/gateway/v1/keys/${k.id}/rotate`, { key: adminKey, body: { grace_seconds: 600 } })));
      assert.deepEqual([a!.status, b!.status].sort(), [201, 409], `${a!.text} / ${b!.text}`);
    });

    test('GET /me/keys answers a page: limit and cursor walk every key once; next_cursor is null at the end', async () => {
      const all = (await app.request('GET', '/gateway/v1/me/keys', { key: adminKey })).body;
      assert.equal(all.next_cursor, null);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: any } = await app.request('GET', `/gateway/v1/me/keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: adminKey });
        assert.equal(page.status, 200);
        seen.push(...page.body.keys.map((k: any) => k.id));
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      assert.deepEqual(seen, all.keys.map((k: any) => k.id));
      const bad = await app.request('GET', '/gateway/v1/me/keys?cursor=bogus', { key: adminKey });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /cursor/);
    });

    test('an expired key fails', async () => {
      const k = await newKey({ name: 'short', expires_in_days: 1 });
      assert.ok(Date.parse(k.expires_at) - Date.now() > 23 * 3600_000);
      // Move its expiry into the past, as time would.
      await app.gw.core.database.db.updateTable('api_keys').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', k.id).execute();
      const r = await app.request('GET', '/gateway/v1/me', { key: k.key });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'key_expired');
    });

    test('a key that fails its checksum is rejected without a database lookup', async () => {
      const spy = countKeyLookups(app);
      try {
        const good = generateKey('user').key;
        const last = good.at(-1) === 'a' ? 'b' : 'a';
        const bad = [good.slice(0, -1) + last, 'tgp-' + 'a'.repeat(40), 'tgp-short', 'tgp-' + 'é'.repeat(40), 'xyz-' + good.slice(4), 'not-a-key-at-all'];
        for (const key of bad) {
          const r = await app.request('GET', '/auth/verify', { key });
          assert.equal(r.status, 401, key);
          assert.equal(r.body.error.code, 'invalid_key');
          assert.ok(r.headers.get('www-authenticate'));
        }
        assert.equal(spy.count, 0, 'no lookup for a malformed key');
        // A well-formed unknown key is looked up once, then remembered as unknown.
        const unknown = generateKey('user').key;
        assert.equal((await app.request('GET', '/auth/verify', { key: unknown })).status, 401);
        assert.equal((await app.request('GET', '/auth/verify', { key: unknown })).status, 401);
        assert.equal(spy.count, 1);
      } finally {
        spy.restore();
      }
    });

    test('verified keys are served from the cache', async () => {
      const k = await newKey();
      const spy = countKeyLookups(app);
      try {
        for (let i = 0; i < 5; i++) assert.equal((await app.request('GET', '/auth/verify', { key: k.key })).status, 200);
        assert.equal(spy.count, 1);
      } finally {
        spy.restore();
      }
    });

    test('last_used_at is recorded in batches', async () => {
      const a = await newKey({ name: 'used-a' });
      const b = await newKey({ name: 'used-b' });
      const listed = async (id: string) => (await app.request('GET', '/gateway/v1/me/keys', { key: adminKey })).body.keys.find((x: any) => x.id === id);
      assert.equal((await listed(a.id)).last_used_at, null);
      // The hot path's recorder (this thread's), its timer stopped so that this test decides when it writes.
      const recorder = app.gw.core.lastUsed;
      await recorder.stop();
      const repo = app.gw.core.store.repos.keys;
      const original = repo.touchLastUsed.bind(repo);
      const batches: string[][] = [];
      repo.touchLastUsed = (entries) => {
        batches.push(entries.map((e) => e.id));
        return original(entries);
      };
      try {
        for (const k of [a, b, a, b]) assert.equal((await app.request('GET', '/auth/verify', { key: k.key })).status, 200);
        assert.equal(batches.length, 0, 'a request writes nothing itself');
        assert.equal((await listed(a.id)).last_used_at, null);
        await recorder.flush();
        // One write for both keys, each once (uses within a second are one record); the admin's listing may ride along.
        const ours = batches.map((ids) => ids.filter((id) => id === a.id || id === b.id).sort());
        assert.deepEqual(ours, [[a.id, b.id].sort()]);
        assert.ok((await listed(a.id)).last_used_at, 'last_used_at set by the batch');
        assert.ok((await listed(b.id)).last_used_at, 'last_used_at set by the batch');
      } finally {
        repo.touchLastUsed = original;
        recorder.start();
      }
    });

    test('policy: maximum key lifetime', async () => {
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { max_key_lifetime_days: 7 } } })).status, 200);
      try {
        const tooLong = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'long', expires_in_days: 30 } });
        assert.equal(tooLong.status, 400);
        assert.match(tooLong.body.error.message, /at most 7 days/);
        const capped = await newKey({ name: 'default' });
        const days = (Date.parse(capped.expires_at) - Date.now()) / 86_400_000;
        assert.ok(days > 6.9 && days <= 7, `a key without expires_in_days gets the cap (${days})`);
      } finally {
        await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { max_key_lifetime_days: null } } });
      }
    });

    test('policy: personal key creation disabled', async () => {
      const existing = await newKey({ name: 'before-policy' });
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { disable_personal_keys: true } } })).status, 200);
      try {
        const r = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'nope' } });
        assert.equal(r.status, 403);
        assert.equal(r.body.error.code, 'personal_keys_disabled');
        assert.equal((await app.request('GET', '/gateway/v1/me', { key: existing.key })).status, 200, 'existing keys keep working');
      } finally {
        await app.request('PATCH', `/gateway/v1/orgs/${org}`, { key: adminKey, body: { policies: { disable_personal_keys: false } } });
      }
    });

    test('a member manages only their own keys; an org admin manages everyone\'s', async () => {
      const alice = await app.createUser({ org, username: `alice-${dialect}` });
      const bob = await app.createUser({ org, username: `bob-${dialect}` });
      const ak = await newKey({ name: 'alice' }, alice.key);
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${ak.id}`, { key: bob.key })).status, 404, 'another member\'s key does not exist for bob');
      assert.equal((await app.request('POST', `/gateway/v1/keys/${ak.id}/rotate`, { key: bob.key, body: { grace_seconds: 0 } })).status, 404);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: ak.key })).status, 200);
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${ak.id}`, { key: adminKey })).status, 204, 'the org admin revokes it');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: ak.key })).status, 401);
    });

    test('deactivating a user stops their keys at once', async () => {
      const carol = await app.createUser({ org, username: `carol-${dialect}` });
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: carol.key })).status, 200);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/users/${carol.username}`, { key: adminKey })).status, 204);
      const refused = await app.request('GET', '/gateway/v1/me', { key: carol.key });
      assert.equal(refused.status, 401);
      // What is true (the account is deactivated), not "no such key": the key comes back with the account.
      assert.equal(refused.body.error.code, 'account_deactivated');
      assert.match(refused.body.error.message, /deactivated account/);
      const u = await app.request('GET', `/gateway/v1/orgs/${org}/users/${carol.username}`, { key: adminKey });
      assert.equal(u.body.status, 'deactivated');
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}/users/${carol.username}`, { key: adminKey, body: { status: 'active' } })).status, 200);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: carol.key })).status, 200, 'reactivated');
    });

    test('audit events record key changes with who, what, target and IP', async () => {
      const k = await newKey({ name: 'audited' });
      const me = (await app.request('GET', '/gateway/v1/me', { key: adminKey })).body;
      const del = await app.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey });
      assert.equal(del.status, 204);
      const r = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=50`, { key: adminKey });
      assert.equal(r.status, 200);
      const revoke = r.body.events.find((e: any) => e.action === 'key.revoke' && e.target.id === k.id);
      assert.ok(revoke);
      // who
      assert.equal(revoke.actor.type, 'user');
      assert.equal(revoke.actor.name, me.username);
      assert.ok(revoke.actor.id);
      // target
      assert.equal(revoke.target.type, 'api_key');
      // the client's address (the test runs on loopback), and the id of the request that did it
      assert.match(String(revoke.ip), /^(?:127\.0\.0\.1|::ffff:127\.0\.0\.1|::1)$/);
      assert.equal(revoke.request_id, del.headers.get('x-request-id'));
      assert.ok(r.body.events.some((e: any) => e.action === 'key.create' && e.target.id === k.id));
      assert.ok(!r.text.includes(k.key), 'the audit log never holds a secret');
    });

    test('Basic with another user name and the tracking client\'s header shape', async () => {
      const k = await newKey();
      const other = await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: 'Basic ' + Buffer.from('someone:' + k.key).toString('base64') } });
      assert.equal(other.status, 200);
      const r = await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(k.key) } });
      assert.equal(r.status, 200);
    });
  });
}
