import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

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

    test('create → list → use → revoke', async () => {
      const created = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'laptop' } });
      assert.equal(created.status, 201, created.text);
      const k = created.body;
      assert.match(k.key, /^tgp-[A-Za-z0-9]{40}$/);
      assert.equal(k.key.split('-').at(-1).length, 40);
      assert.ok(k.key.startsWith(k.key_id));
      assert.equal(k.name, 'laptop');
      assert.equal(k.expires_at, null);

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
      const after = await app.request('GET', '/gateway/v1/me', { key: k.key });
      assert.equal(after.status, 401);
      assert.equal(after.body.error.code, 'key_revoked');
      assert.ok(after.headers.get('www-authenticate')?.includes('Basic'));
    });

    test('last_used_at is recorded in batches', async () => {
      const k = (await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'used' } })).body;
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: k.key })).status, 200);
      await sleep(200);
      const listed = (await app.request('GET', '/gateway/v1/me/keys', { key: adminKey })).body.keys.find((x: any) => x.id === k.id);
      assert.ok(listed.last_used_at, 'last_used_at set after the flush interval');
    });
  });
}
