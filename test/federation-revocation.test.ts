/**
 * Federation access tokens are revoked on every instance within the revocation bound, like API keys: two
 * instances (A and B) on one PostgreSQL and one Redis, a 300 s key cache (only an invalidation makes B forget
 * a token), a token exchanged on A and used on both; deleting its trust rule on A, then (another token)
 * deleting its service account on A, makes it fail on B within the bound — measured from A's answer to the
 * first failing request sent to B.
 *
 * SQLite is one instance on one file (no fan-out to prove), so this file runs on PostgreSQL with Redis only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { addRule, deleteRule, exchange, federatedAccount } from './support/federation.ts';
import { startWorkloadIdp } from './support/workload-idp.ts';
import type { WorkloadIdp } from './support/workload-idp.ts';

const PG = dialects().includes('postgres');
const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;
/** The bound API keys have (docs/ARCHITECTURE.md): the database poll (500 ms) plus a query, whatever Redis does; milliseconds with Redis up. */
const BOUND_MS = 1000;
const POLL_MS = 20;

const skip = !PG ? 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set' : !REDIS_URL ? 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set' : false;

describe('federation access tokens revoked across instances (PostgreSQL + Redis)', { skip }, () => {
  let a: TestApp;
  let b: TestApp;
  let k8s: WorkloadIdp;
  let acct: Awaited<ReturnType<typeof federatedAccount>>;

  before(async () => {
    const shared = { redisUrl: REDIS_URL, redisKeyPrefix: `tgfed-${randomBytes(4).toString('hex')}:`, keyCacheTtlSeconds: 300, allowHttpIssuers: true };
    a = await startApp('postgres', shared);
    b = await startApp('postgres', shared, { shareWith: a });
    k8s = await startWorkloadIdp('kubernetes');
    acct = await federatedAccount(a);
    b.keys.add(acct.adminKey);
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await k8s?.close();
  });

  /** /auth/verify with the token on an instance: its hot path, the isolate that caches it. */
  const verify = async (on: TestApp, token: string) => {
    const r = await fetch(`${on.url}/auth/verify`, { headers: { Authorization: `Bearer ${token}` } });
    const body = r.status === 200 ? null : ((await r.json()) as { error: { code: string } });
    if (r.status === 200) await r.body?.cancel();
    return { status: r.status, code: body?.error.code };
  };

  /** A token exchanged on A, used (and so cached) on both instances. */
  const liveToken = async (subject: string) => {
    const r = await exchange(a, await k8s.mint(acct.org, { claims: { sub: subject } }));
    assert.equal(r.status, 200, r.text);
    const token = r.body.access_token as string;
    b.keys.add(token);
    for (const on of [a, b]) assert.equal((await verify(on, token)).status, 200);
    return token;
  };

  /** ms from `since` until the first request sent to B that fails; fails the test past 5 s. */
  const untilRefusedOnB = async (token: string, since: number) => {
    for (;;) {
      const sent = performance.now();
      const r = await verify(b, token);
      if (r.status === 401) return { ms: sent - since, code: r.code };
      assert.equal(r.status, 200);
      assert.ok(performance.now() - since < 5000, 'still accepted on B after 5 s');
      await sleep(POLL_MS);
    }
  };

  test('deleting the trust rule on A: its token fails on B within the bound', async () => {
    const rule = await addRule(a, acct.adminKey, acct.sa.id, { name: 'trainer', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:trainer' });
    const token = await liveToken('system:serviceaccount:ml:trainer');
    await deleteRule(a, acct.adminKey, acct.sa.id, rule.id);
    const answered = performance.now();
    const { ms, code } = await untilRefusedOnB(token, answered);
    assert.ok(ms <= BOUND_MS, `refused on B ${ms.toFixed(0)} ms after the delete answered (bound ${BOUND_MS} ms)`);
    assert.equal(code, 'access_token_revoked');
    assert.equal((await verify(a, token)).code, 'access_token_revoked');
    // And no new token for that workload: the rule is gone.
    assert.equal((await exchange(a, await k8s.mint(acct.org))).body.error, 'invalid_grant');
  });

  test('deleting the service account on A: its token fails on B within the bound', async () => {
    await addRule(a, acct.adminKey, acct.sa.id, { name: 'evaluator', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:evaluator' });
    const token = await liveToken('system:serviceaccount:ml:evaluator');
    const del = await a.request('DELETE', `/gateway/v1/service-accounts/${acct.sa.id}`, { key: acct.adminKey });
    assert.equal(del.status, 204, del.text);
    const answered = performance.now();
    const { ms } = await untilRefusedOnB(token, answered);
    assert.ok(ms <= BOUND_MS, `refused on B ${ms.toFixed(0)} ms after the delete answered (bound ${BOUND_MS} ms)`);
    assert.equal((await verify(a, token)).status, 401);
  });
});
