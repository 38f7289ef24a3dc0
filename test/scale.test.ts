import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;

if (!REDIS_URL) {
  test('several instances sharing Redis', { skip: 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set, so cross-instance invalidation was not tested' }, () => {});
} else {
  // The scaled setup: the most demanding database available, two instances, one Redis.
  const dialect = dialects().includes('postgres') ? 'postgres' : 'sqlite';
  describe(`two gateway instances sharing ${dialect} and Redis`, () => {
    let a: TestApp;
    let b: TestApp;
    let org: string;
    let adminKey: string;
    before(async () => {
      const shared = { redisUrl: REDIS_URL, redisKeyPrefix: `tgtest-${randomBytes(4).toString('hex')}:`, keyCacheTtlSeconds: 300, authFailureLimit: 4 };
      a = await startApp(dialect, shared);
      b = await startApp(dialect, shared, { shareWith: a });
      ({ org, adminKey } = await a.bootstrap());
      b.keys.add(adminKey);
    });
    after(async () => {
      await b?.close();
      await a?.close();
    });

    /** Polls instance B until the key fails; returns how long that took. */
    const msUntilRejectedOnB = async (key: string) => {
      const start = Date.now();
      while (Date.now() - start < 3000) {
        const r = await fetch(b.url + '/gateway/v1/me', { headers: { authorization: basic(key) } });
        if (r.status === 401) return Date.now() - start;
        await sleep(10);
      }
      return Infinity;
    };

    test('a key revoked on one instance fails on the other within a second', async () => {
      const k = (await a.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'shared' } })).body;
      b.keys.add(k.key);
      // Cached on B (TTL 300 s): only an invalidation can make B forget it.
      assert.equal((await b.request('GET', '/gateway/v1/me', { key: k.key })).status, 200);
      assert.equal((await b.request('GET', '/gateway/v1/me', { key: k.key })).status, 200);
      assert.equal((await a.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey })).status, 204);
      const ms = await msUntilRejectedOnB(k.key);
      assert.ok(ms < 1000, `rejected on B after ${ms} ms`);
    });

    test('rotation without grace and deactivation reach the other instance', async () => {
      const k = (await a.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'rot' } })).body;
      b.keys.add(k.key);
      assert.equal((await b.request('GET', '/gateway/v1/me', { key: k.key })).status, 200);
      const rot = await a.request('POST', `/gateway/v1/keys/${k.id}/rotate`, { key: adminKey, body: { grace_seconds: 0 } });
      assert.equal(rot.status, 201);
      assert.ok((await msUntilRejectedOnB(k.key)) < 1000);

      const dev = await a.createUser({ org, username: `dev-${randomBytes(3).toString('hex')}` });
      b.keys.add(dev.key);
      assert.equal((await b.request('GET', '/gateway/v1/me', { key: dev.key })).status, 200);
      assert.equal((await a.request('DELETE', `/gateway/v1/orgs/${org}/users/${dev.username}`, { key: adminKey })).status, 204);
      assert.ok((await msUntilRejectedOnB(dev.key)) < 1000);
    });

    test('failed authentications are counted across instances', async () => {
      // Distinct keys: a repeated one counts once (test/auth-failures.test.ts).
      const from = () => ({ authorization: basic(generateKey('user').key), 'x-forwarded-for': '198.51.100.23' });
      assert.equal((await fetch(a.url + '/gateway/v1/me', { headers: from() })).status, 401);
      assert.equal((await fetch(b.url + '/gateway/v1/me', { headers: from() })).status, 401);
      assert.equal((await fetch(a.url + '/gateway/v1/me', { headers: from() })).status, 401);
      assert.equal((await fetch(b.url + '/gateway/v1/me', { headers: from() })).status, 401);
      assert.equal((await fetch(a.url + '/gateway/v1/me', { headers: from() })).status, 429);
    });

    test('readyz checks Redis and the invalidation channel', async () => {
      const r = await fetch(b.url + '/readyz');
      assert.equal(r.status, 200);
      assert.deepEqual(((await r.json()) as any).checks, { database: 'ok', redis: 'ok', invalidation_channel: 'ok', invalidation_poll: 'ok' });
    });
  });
}
