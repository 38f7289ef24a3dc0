import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { closeCore, createCore } from '../src/core.ts';
import type { Core } from '../src/core.ts';
import { loadConfig } from '../src/config/config.ts';
import type { ConfigInput } from '../src/config/config.ts';
import { hashSecret } from '../src/crypto/tokens.ts';
import { createLogger } from '../src/log/logger.ts';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { PrivateRedis } from './support/faults/redis.ts';

/**
 * Issue 15: a revocation reaches every instance within a second even when the Redis channel cannot
 * carry it (Redis down, the CLI): every isolate polls the database's invalidation log. Real PostgreSQL
 * and a redis-server of this test's own, killed and started again on the same port.
 */

/** The answer of /auth/verify on `app` (the hot paths' isolate) for `key`. */
async function verify(app: TestApp, key: string): Promise<{ status: number; teams: string }> {
  const r = await fetch(app.url + '/auth/verify', { headers: { authorization: basic(key) } });
  await r.arrayBuffer();
  return { status: r.status, teams: r.headers.get('x-trackgate-teams') ?? '' };
}

/**
 * Milliseconds until `done` holds for the answer of /auth/verify on `app` (Infinity past `withinMs`),
 * counted to when the first such request was SENT: what the bound is about is which requests are still
 * let through, and with Redis down a 401 itself is slow to come (the failed-authentication count waits
 * for the Redis client's retries before its in-memory fallback), which is not the cache's doing.
 */
async function msUntil(app: TestApp, key: string, done: (r: { status: number; teams: string }) => boolean, withinMs = 3000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    const sent = Date.now();
    if (done(await verify(app, key))) return sent - start;
    await sleep(10);
  }
  return Infinity;
}

async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, withinMs: number): Promise<T> {
  const start = Date.now();
  let last = await read();
  while (!ok(last)) {
    if (Date.now() - start > withinMs) assert.fail(`${what}: still ${JSON.stringify(last)} after ${withinMs} ms`);
    await sleep(50);
    last = await read();
  }
  return last;
}

async function readyz(app: TestApp): Promise<{ code: number; status: string; checks: Record<string, string> }> {
  const r = await fetch(app.url + '/readyz');
  const body = (await r.json()) as { status: string; checks: Record<string, string> };
  return { code: r.status, ...body };
}

async function gauge(app: TestApp, name: string): Promise<number | null> {
  const text = await (await fetch(app.url + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

/** A bare core on an app's database, as the CLI makes one (no HTTP, no Redis). */
async function sideCore(app: TestApp, overrides: ConfigInput = {}): Promise<Core> {
  const config = loadConfig({
    env: {},
    configDir: join(tmpdir(), 'trackgate-no-config'),
    overrides: { databaseUrl: app.databaseUrl, dataDir: app.gw.core.config.dataDir, logLevel: 'silent', ...overrides },
  });
  return createCore(config, { logger: createLogger({ level: 'silent' }) });
}

const pgAvailable = dialects().includes('postgres');

describe('two instances on PostgreSQL with a Redis of their own', { skip: pgAvailable ? false : 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set' }, () => {
  let redis: PrivateRedis;
  let a: TestApp;
  let b: TestApp;
  let org: string;
  let adminKey: string;

  before(async () => {
    redis = await PrivateRedis.start();
    // A long key cache: only an invalidation can make B forget a key within the test. The poll at its default (500 ms).
    const shared: ConfigInput = { redisUrl: redis.url, redisKeyPrefix: `tginval-${randomBytes(4).toString('hex')}:`, keyCacheTtlSeconds: 300, maxKeysPerPrincipal: 1000 };
    a = await startApp('postgres', shared);
    b = await startApp('postgres', shared, { shareWith: a });
    ({ org, adminKey } = await a.bootstrap());
    b.keys.add(adminKey);
    await eventually('B hears the channel at start', () => readyz(b), (r) => r.checks.invalidation_channel === 'ok', 5000);
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await redis?.kill();
  });

  const newKey = async (on: TestApp = a) => {
    const k = (await on.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'inval' } })).body as { id: string; key: string };
    a.keys.add(k.key);
    b.keys.add(k.key);
    return k;
  };

  test('Redis killed: a key revoked through A fails on B within 1 s (the poll); B says degraded (200) and its gauge reads 0', async () => {
    const k = await newKey();
    assert.equal((await verify(b, k.key)).status, 200);
    assert.equal(await gauge(b, 'trackgate_invalidation_channel_up'), 1);
    const downWarnings = () => readFileSync(b.logFile, 'utf8').split('\n').filter((l) => l.includes('invalidation channel down')).length;
    const warnedBefore = downWarnings();
    await redis.kill();
    assert.equal((await a.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey })).status, 204);
    const ms = await msUntil(b, k.key, (r) => r.status === 401);
    assert.ok(ms < 1000, `revoked key refused on B after ${ms} ms`);

    const r = await eventually('B /readyz degraded', () => readyz(b), (x) => x.checks.invalidation_channel === 'down', 5000);
    assert.equal(r.code, 200);
    assert.equal(r.status, 'degraded');
    assert.equal(r.checks.database, 'ok');
    assert.equal(r.checks.redis, 'unreachable');
    assert.equal(r.checks.invalidation_poll, 'ok');
    assert.equal(await gauge(b, 'trackgate_invalidation_channel_up'), 0);
    const age = await gauge(b, 'trackgate_invalidation_poll_age_seconds');
    assert.ok(age !== null && age < 2, `poll age ${age}`);
    // Logged when it switched, not at every ping: once per isolate (the hot paths' and the management worker's).
    await sleep(1500);
    const warnings = downWarnings() - warnedBefore;
    assert.ok(warnings >= 1 && warnings <= 2, `${warnings} warnings`);
  });

  test('with Redis down, deactivating a user, removing a team member and deleting a service account reach B within 1 s', async () => {
    const suffix = randomBytes(3).toString('hex');
    // A user deactivated through A.
    const dev = await a.createUser({ org, username: `dev-${suffix}` });
    b.keys.add(dev.key);
    assert.equal((await msUntil(b, dev.key, (r) => r.status === 200)) < 1000, true);
    assert.equal((await a.request('DELETE', `/gateway/v1/orgs/${org}/users/${dev.username}`, { key: adminKey })).status, 204);
    const deactivated = await msUntil(b, dev.key, (r) => r.status === 401);
    assert.ok(deactivated < 1000, `deactivated user's key refused on B after ${deactivated} ms`);

    // A member removed from a team through A: B's identity headers drop the team.
    const team = `team-${suffix}`;
    const member = await a.createUser({ org, username: `member-${suffix}` });
    b.keys.add(member.key);
    assert.equal((await a.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
    assert.equal((await a.request('PUT', `/gateway/v1/teams/${team}/members/${member.username}`, { key: adminKey, body: { role: 'member' } })).status, 201);
    const joined = await msUntil(b, member.key, (r) => r.status === 200 && r.teams.includes(team));
    assert.ok(joined < 1000, `membership seen on B after ${joined} ms`);
    assert.equal((await a.request('DELETE', `/gateway/v1/teams/${team}/members/${member.username}`, { key: adminKey })).status, 204);
    const left = await msUntil(b, member.key, (r) => r.status === 200 && !r.teams.includes(team));
    assert.ok(left < 1000, `removal seen on B after ${left} ms`);

    // A service account deleted through A: its key fails on B.
    const sa = (await a.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name: `robot ${suffix}` } })).body as { id: string; key: { key: string } };
    a.keys.add(sa.key.key);
    b.keys.add(sa.key.key);
    assert.equal((await verify(b, sa.key.key)).status, 200);
    assert.equal((await a.request('DELETE', `/gateway/v1/service-accounts/${sa.id}`, { key: adminKey })).status, 204);
    const deleted = await msUntil(b, sa.key.key, (r) => r.status === 401);
    assert.ok(deleted < 1000, `deleted service account's key refused on B after ${deleted} ms`);
  });

  test('Redis back on its port: the channel returns by itself (gauge 1, /readyz ok) and revocations arrive over Redis again', async () => {
    await redis.startServer();
    const r = await eventually('B /readyz ok', () => readyz(b), (x) => x.status === 'ok', 15_000);
    assert.equal(r.code, 200);
    assert.equal(r.checks.invalidation_channel, 'ok');
    assert.equal(await gauge(b, 'trackgate_invalidation_channel_up'), 1);
    await eventually('A hears the channel', () => readyz(a), (x) => x.checks.invalidation_channel === 'ok', 15_000);
    await eventually('the return logged', () => Promise.resolve(readFileSync(b.logFile, 'utf8').includes('invalidation channel up again')), (x) => x, 3000);

    // Only the channel can tell B's hot paths now: their poll is stopped (closeCore stops it anyway).
    await b.gw.core.invalidationPoller.stop();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const k = await newKey();
      assert.equal((await verify(b, k.key)).status, 200);
      assert.equal((await a.request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey })).status, 204);
      times.push(await msUntil(b, k.key, (x) => x.status === 401, 2000));
    }
    // Tens of milliseconds in practice; the margin is for a loaded machine, and without the channel it would be never.
    assert.ok(times.every((t) => t < 500), `revocations over Redis took ${times.join(', ')} ms`);
  });

  test('concurrent revocations on both instances: a core that only polls the log misses none', async () => {
    const observer = await sideCore(a, { invalidationPollMs: 50 });
    try {
      const seen = new Set<string>();
      let everything = 0;
      observer.invalidator.onInvalidate((e) => {
        if (e.kind === 'key') seen.add(e.hash);
        else everything++;
      });
      const keys = await Promise.all(Array.from({ length: 60 }, (_, i) => newKey(i % 2 ? a : b)));
      const results = await Promise.all(keys.map((k, i) => (i % 2 ? b : a).request('DELETE', `/gateway/v1/keys/${k.id}`, { key: adminKey })));
      assert.ok(results.every((r) => r.status === 204));
      const hashes = keys.map((k) => hashSecret(k.key, 'hex'));
      await eventually('every revocation polled', () => Promise.resolve(hashes.filter((h) => !seen.has(h)).length), (n) => n === 0, 3000);
      assert.equal(everything, 0, 'read event by event, not dropped wholesale');
      assert.equal(observer.invalidator.mark(), await observer.store.repos.invalidations.head());
    } finally {
      await closeCore(observer);
    }
  });
});

describe('SQLite: a change made by another process (the CLI) reaches a running server', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp('sqlite', { keyCacheTtlSeconds: 300 });
  });
  after(() => app?.close());

  test('a key revoked through a second core on the same file fails on the server within 1 s', async () => {
    const { adminKey } = await app.bootstrap();
    const k = (await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'cli' } })).body as { id: string; key: string };
    assert.equal((await verify(app, k.key)).status, 200);
    const cli = await sideCore(app);
    try {
      const admin = await cli.keyVerifier.verify(adminKey);
      assert.ok(admin.ok);
      await cli.keys.revoke({ principal: admin.principal, ip: '127.0.0.1', requestId: 'cli-test' }, k.id);
    } finally {
      await closeCore(cli);
    }
    const ms = await msUntil(app, k.key, (r) => r.status === 401);
    assert.ok(ms < 1000, `revoked by another process, refused after ${ms} ms`);
    const r = await readyz(app);
    assert.equal(r.status, 'ok');
    assert.equal(r.checks.invalidation_channel, 'none');
    assert.equal(await gauge(app, 'trackgate_invalidation_channel_up'), null, 'no channel without Redis: no gauge');
  });
});
