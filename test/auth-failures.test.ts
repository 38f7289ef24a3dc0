import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../src/keys/key-format.ts';
import { basic, dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

/**
 * The failed-authentication limit blocks guessing, not clients with a good key
 * (issue 13): behind a NAT many people share one address, and one script
 * looping on a revoked key must not lock them out.
 */
const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;
const LIMIT = 4;

for (const dialect of dialects()) {
  for (const redis of REDIS_URL ? [false, true] : [false]) {
    describe(`failed authentications (${dialect}, ${redis ? 'Redis' : 'in-process'} counts)`, () => {
      let app: TestApp;
      let org: string;
      let adminKey: string;
      let n = 0;
      /** A fresh documentation address (TEST-NET-3) per test, so tests do not share counts. */
      const address = () => `203.0.113.${++n + (redis ? 100 : 0) + (dialect === 'postgres' ? 50 : 0)}`;
      const call = (path: string, key: string, ip: string) => fetch(app.url + path, { headers: { authorization: basic(key), 'x-forwarded-for': ip } });
      const status = async (path: string, key: string, ip: string) => {
        const r = await call(path, key, ip);
        await r.arrayBuffer();
        return r.status;
      };

      before(async () => {
        app = await startApp(dialect, {
          authFailureLimit: LIMIT,
          authFailureWindowSeconds: 60,
          ...(redis ? { redisUrl: REDIS_URL, redisKeyPrefix: `tgtest-${randomBytes(4).toString('hex')}:` } : {}),
        });
        ({ org, adminKey } = await app.bootstrap());
      });
      after(() => app.close());

      for (const path of ['/auth/verify', '/gateway/v1/me']) {
        test(`${path}: a script looping on a revoked key counts once; a valid key from the same address is answered`, async () => {
          const k = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `revoked-${path}` } });
          assert.equal(k.status, 201, k.text);
          assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey })).status, 204);
          const nat = address();
          const statuses: number[] = [];
          for (let i = 0; i < LIMIT * 5; i++) statuses.push(await status(path, k.body.key, nat));
          assert.deepEqual(new Set(statuses), new Set([401]), `a repeated revoked key is a 401 every time, never a block: ${statuses.join(',')}`);
          // Someone else behind the same NAT: a key already in the cache, and one never used before.
          assert.equal(await status(path, adminKey, nat), 200);
          const colleague = await app.createUser({ org, username: `colleague-${n}-${dialect}-${redis ? 'r' : 'm'}` });
          assert.equal(await status(path, colleague.key, nat), 200);
        });

        test(`${path}: many distinct bad keys from one address get 429 with Retry-After; valid keys from it are still answered`, async () => {
          const attacker = address();
          const statuses: number[] = [];
          let limited: Response | null = null;
          for (let i = 0; i <= LIMIT; i++) {
            const r = await call(path, generateKey('user').key, attacker);
            statuses.push(r.status);
            if (r.status === 429) limited = r;
            else await r.arrayBuffer();
          }
          assert.deepEqual(statuses, [...Array<number>(LIMIT).fill(401), 429]);
          assert.ok(limited);
          assert.ok(Number(limited.headers.get('retry-after')) >= 1, `Retry-After: ${limited.headers.get('retry-after')}`);
          if (path.startsWith('/gateway')) assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'rate_limited');
          else await limited.arrayBuffer();

          // A key the gateway can verify is answered normally: cached, or looked up on the blocked address's budget
          // (which a valid key does not use up). Users are made first: a new user empties the key cache.
          const fresh = await app.createUser({ org, username: `fresh-${n}-${dialect}-${redis ? 'r' : 'm'}` });
          const late = await app.createUser({ org, username: `late-${n}-${dialect}-${redis ? 'r' : 'm'}` });
          assert.equal(await status(path, fresh.key, attacker), 200, 'a valid key not yet cached');
          assert.equal(await status(path, fresh.key, attacker), 200);
          assert.equal(await status(path, adminKey, attacker), 200);

          // More guesses stay blocked, and once the budget of lookups is spent by them, an uncached key waits too.
          for (let i = 0; i < 3; i++) assert.equal(await status(path, generateKey('user').key, attacker), 429);
          assert.equal(await status(path, adminKey, attacker), 200, 'a cached key still works from the blocked address');
          const waits = await call(path, late.key, attacker);
          await waits.arrayBuffer();
          assert.equal(waits.status, 429, 'the budget of lookups is spent by failed ones');
          assert.ok(Number(waits.headers.get('retry-after')) >= 1);
          assert.equal(await status(path, late.key, address()), 200, 'from another address it works');

          // Another address is not affected.
          assert.equal(await status(path, generateKey('user').key, address()), 401);
        });

        test(`${path}: malformed credentials are refused without a lookup and never block`, async () => {
          const ip = address();
          for (let i = 0; i < LIMIT * 3; i++) {
            // Right shape, wrong checksum: refused by the shape check.
            assert.equal(await status(path, `tgp-${randomBytes(30).toString('base64url').replace(/[-_]/g, 'x').slice(0, 40)}`, ip), 401);
          }
          assert.equal(await status(path, generateKey('user').key, ip), 401, 'the first looked-up failure is a 401, not a 429');
        });
      }
    });
  }
}
