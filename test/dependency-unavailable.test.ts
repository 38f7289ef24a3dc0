/**
 * Issue 15: a dependency that is down or slow is answered 503 `unavailable` with Retry-After: never a
 * 500, never a 401 for a key that could not be checked, never a request that hangs. Real dependencies:
 * a PostgreSQL of the test's own (crashed with `pg_ctl -m immediate`, partitioned through a TCP relay
 * that drops every byte), a redis-server of its own (killed), SQLite locked by another process and
 * SQLite full. The key cache's stale-while-unavailable rule is also checked on its own, on a clock the
 * test moves.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { CacheInvalidator } from '../src/auth/invalidation.ts';
import type { Principal } from '../src/auth/principal.ts';
import { errors } from '../src/errors/app-error.ts';
import { isDatabaseUnavailable } from '../src/db/unavailable.ts';
import { generateKey } from '../src/keys/key-format.ts';
import { KeyVerifier } from '../src/keys/key-verifier.ts';
import type { ApiKeyRow, KeysRepository } from '../src/keys/keys.repository.ts';
import type { LastUsedRecorder } from '../src/keys/last-used.ts';
import { basic, sleep, startApp } from './support/app.ts';
import type { TestApp, TestResponse } from './support/app.ts';
import { canRunPrivatePostgres, PrivatePostgres } from './support/faults/postgres.ts';
import { PrivateRedis, canRunPrivateRedis } from './support/faults/redis.ts';
import { FaultProxy } from './support/faults/tcp-proxy.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { nginxBinary, startNginx } from './support/nginx.ts';
import type { Nginx } from './support/nginx.ts';
import { signIn } from './support/web.ts';
import type { WebBrowser } from './support/web.ts';

/** The database timeout of these tests (TRACKGATE_DATABASE_TIMEOUT_MS); a partitioned query is answered about this long after it starts. */
const DB_TIMEOUT_MS = 1000;
/** What a loaded machine (two cores, several test runs) may add to any bound here. */
const MARGIN_MS = 2500;


/** An answer is the documented 503: status, Retry-After, and the JSON error naming the dependency and nothing of its internals. */
function assertUnavailable(r: TestResponse, dependency: RegExp, what: string): void {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/, `${what}: Retry-After`);
  const body = r.body as { error?: { code?: string; message?: string } };
  assert.equal(body.error?.code, 'unavailable', what);
  assert.match(body.error?.message ?? '', dependency, what);
  assert.doesNotMatch(r.text, /127\.0\.0\.1|ECONN|terminated|timeout exceeded|SQLITE_/, `${what}: no driver text or host in the answer`);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** Polls `fn` until it is true or `ms` passed; the time it took, or throws. */
async function within(ms: number, what: string, fn: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

const verify = (app: TestApp, key: string, path = '/auth/verify') => app.request('GET', path, { key });

describe('PostgreSQL crashed, then partitioned (a PostgreSQL of the test\'s own behind a fault relay)', { skip: !canRunPrivatePostgres() && 'no PostgreSQL server binaries (initdb, pg_ctl) on this machine' }, () => {
  let pg: PrivatePostgres;
  let relay: FaultProxy;
  let upstream: StubUpstream;
  /** keyCacheTtlSeconds 1, stale for 300 s: cached keys go stale quickly. */
  let app: TestApp;
  /** Same database, keys cached for 60 s and no stale answers. */
  let longCache: TestApp;
  let org: string;
  let adminKey: string;
  const keys: Record<'fresh' | 'stale' | 'uncached' | 'uncached2' | 'uncached3' | 'slow1' | 'slow2', string> = { fresh: '', stale: '', uncached: '', uncached2: '', uncached3: '', slow1: '', slow2: '' };
  let browser: WebBrowser;
  let adminEmail: string;
  /** The shipped nginx sample in front of `app`, when nginx is installed. */
  let nginx: Nginx | null = null;

  before(async () => {
    pg = await PrivatePostgres.start();
    relay = await FaultProxy.start({ port: pg.port });
    upstream = await startUpstream();
    const databaseUrl = `postgres://postgres@127.0.0.1:${relay.port}/postgres`;
    app = await startApp('sqlite', { databaseUrl, databaseTimeoutMs: DB_TIMEOUT_MS, keyCacheTtlSeconds: 1, keyCacheStaleSeconds: 300, upstreamUrl: upstream.url });
    longCache = await startApp('sqlite', { databaseUrl, databaseTimeoutMs: DB_TIMEOUT_MS, keyCacheTtlSeconds: 60, keyCacheStaleSeconds: 0, managementIsolate: 'inline' }, { shareWith: app });
    const b = await app.bootstrap();
    org = b.org;
    adminKey = b.adminKey;
    adminEmail = `admin@${org}.example`;
    for (const name of Object.keys(keys) as (keyof typeof keys)[]) keys[name] = (await app.createUser({ org, username: `${name}-${org}` })).key;
    browser = await signIn(app, adminEmail);
    if (nginxBinary()) nginx = await startNginx({ trackgatePort: Number(new URL(app.url).port), upstreamPort: upstream.port });
  });

  after(async () => {
    relay.heal();
    await nginx?.close();
    await app?.close();
    await longCache?.close();
    await upstream?.close();
    await relay?.close();
    pg?.destroy();
  });

  test('crashed: uncached keys 503 (verify, proxy, management), cached and stale keys 200, pages a 503 page, writes leave nothing', async () => {
    // A change of identities empties every key cache (an invalidation of them all): made first.
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'before-crash' } })).status, 201);
    // The other instance (longCache) hears of it through the invalidation log's poll (no Redis here), within
    // TRACKGATE_INVALIDATION_POLL_MS (500) and a query: what it caches before that would be dropped by it.
    await sleep(1200);
    // Known before the crash: the stale key and the admin's (in the main isolate and the management worker), the fresh key on the long cache.
    assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: adminKey })).status, 200);
    assert.equal((await verify(app, keys.stale)).status, 200);
    assert.equal((await app.request('GET', '/graphql', { key: keys.stale })).status, 200);
    assert.equal((await verify(longCache, keys.fresh)).status, 200);
    assert.equal((await browser.get('/settings')).status, 200);
    const cachedAt = Date.now();

    pg.crash();

    assertUnavailable(await verify(app, keys.uncached), /database/, '/auth/verify, a key never seen');
    assertUnavailable(await verify(app, keys.uncached, '/auth/verify/api/v1/runs?x=1'), /database/, '/auth/verify/<path>, a key never seen');
    assertUnavailable(await app.request('GET', '/graphql', { key: keys.uncached }), /database/, 'the proxy, a key never seen');
    if (nginx) {
      // auth_request turns any answer but 2xx/401/403 into a 500 of its own; the sample passes the 503 on.
      const res = await fetch(`${nginx.url}/api/v1/runs`, { headers: { authorization: basic(keys.uncached) } });
      const text = await res.text();
      assert.equal(res.status, 503, `through nginx: ${res.status} ${text}\n${nginx.errorLog()}`);
      assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'unavailable');
    }
    assert.equal((await verify(longCache, keys.fresh)).status, 200, 'a key in the cache (within its TTL) keeps working');
    // Past its 1 s TTL, within the 300 s stale bound.
    await sleep(Math.max(0, cachedAt + 1300 - Date.now()));
    assert.equal((await verify(app, keys.stale)).status, 200, 'a key cached past its TTL is answered stale');
    const proxied = await app.request('GET', '/graphql', { key: keys.stale });
    assert.equal(proxied.status, 200, `the proxy, a stale key: ${proxied.text.slice(0, 200)}`);

    assertUnavailable(await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: adminKey }), /database/, 'a management read');
    assertUnavailable(await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'during-outage' } }), /database/, 'a management write');
    assertUnavailable(await longCache.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'during-outage' } }), /database/, 'a management write (inline)');

    const page = await browser.get('/settings');
    assert.equal(page.status, 503, `a page: ${page.status} ${page.text.slice(0, 300)}`);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.match(page.text, /<code>unavailable<\/code>/);

    const ready = await app.request('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal((ready.body as { checks: Record<string, string> }).checks.database, 'unreachable');
  });

  test('back after the crash: answers by itself within a couple of seconds, and the refused write left nothing', async (t) => {
    await pg.startServer();
    const ms = await within(5000, 'recovery', async () => (await verify(app, keys.uncached)).status === 200);
    t.diagnostic(`recovered ${Math.round(ms)} ms after PostgreSQL accepted connections again`);
    assert.ok(ms < 3000, `recovered in ${Math.round(ms)} ms`);
    const teams = await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: adminKey });
    assert.equal(teams.status, 200, teams.text);
    const names = (teams.body as { teams: { name: string }[] }).teams.map((t) => t.name);
    assert.ok(names.includes('before-crash'));
    assert.ok(!names.includes('during-outage'), 'the write refused during the outage left no team');
    const audit = await sql<{ n: number | string }>`select count(*) as n from audit_events where target_name = 'during-outage' or details like '%during-outage%'`.execute(app.gw.core.database.db);
    assert.equal(Number(audit.rows[0]!.n), 0, 'nor an audit event');
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'during-outage' } })).status, 201, 'nor a claimed name');
    assert.equal((await browser.get('/settings')).status, 200, 'the session survived in the database');
    assert.equal((await app.request('GET', '/readyz')).status, 200);
  });

  test('partitioned (packets dropped): 503 within the database timeout, /readyz too; stale keys answered at once; heals by itself', async (t) => {
    // The stale key is cached again, then left to pass its TTL.
    assert.equal((await verify(app, keys.stale)).status, 200);
    await sleep(1300);
    relay.set('blackhole');

    const first = await timed(() => verify(app, keys.uncached2));
    assertUnavailable(first.value, /database/, 'a key never seen, partitioned');
    t.diagnostic(`partitioned, a key never seen: 503 in ${Math.round(first.ms)} ms`);
    assert.ok(first.ms < DB_TIMEOUT_MS + 250 + MARGIN_MS, `answered in ${Math.round(first.ms)} ms`);

    const readyz = await timed(() => app.request('GET', '/readyz'));
    assert.equal(readyz.value.status, 503);
    t.diagnostic(`partitioned, /readyz: 503 in ${Math.round(readyz.ms)} ms`);
    assert.ok(readyz.ms < DB_TIMEOUT_MS + MARGIN_MS, `/readyz answered in ${Math.round(readyz.ms)} ms`);

    // The first stale answer may wait for the database once; right after, the breaker answers without waiting.
    assert.equal((await verify(app, keys.stale)).status, 200, 'stale while partitioned');
    const again = await timed(() => verify(app, keys.stale));
    assert.equal(again.value.status, 200);
    t.diagnostic(`partitioned, a stale key right after: 200 in ${Math.round(again.ms)} ms`);
    assert.ok(again.ms < 900, `a stale key right after an unavailable lookup did not wait for the database (${Math.round(again.ms)} ms)`);

    assertUnavailable(await app.request('GET', '/graphql', { key: keys.uncached3 }), /database/, 'the proxy, partitioned');

    relay.heal();
    const ms = await within(8000, 'recovery after the partition', async () => (await verify(app, keys.uncached2)).status === 200);
    t.diagnostic(`recovered ${Math.round(ms)} ms after the partition healed`);
    assert.ok(ms < DB_TIMEOUT_MS + MARGIN_MS + 1000, `recovered in ${Math.round(ms)} ms`);
    assert.equal((await verify(app, keys.uncached3)).status, 200);
    assert.equal((await app.request('GET', '/readyz')).status, 200);
  });

  test('slow (every packet held back): past the timeout 503, within it the answer is waited for', async (t) => {
    relay.set('delay', 3000);
    try {
      const slow = await timed(() => verify(app, keys.slow1));
      t.diagnostic(`database answering in 3 s per packet: ${slow.value.status} in ${Math.round(slow.ms)} ms`);
      assertUnavailable(slow.value, /database/, 'a database slower than the timeout');
      assert.ok(slow.ms < DB_TIMEOUT_MS + 250 + MARGIN_MS, `answered in ${Math.round(slow.ms)} ms`);
      relay.set('delay', 30);
      const ok = await timed(() => verify(app, keys.slow2));
      t.diagnostic(`database answering in 30 ms per packet: ${ok.value.status} in ${Math.round(ok.ms)} ms`);
      assert.equal(ok.value.status, 200, 'a slow database within the timeout is waited for');
    } finally {
      relay.heal();
    }
    await within(5000, 'after the delay', async () => (await verify(app, keys.slow1)).status === 200);
  });
});

/** Holds SQLite's write lock on `file` from another process for `ms`; resolves once it holds it. */
function holdWriteLock(file: string, ms: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `const db = new (require('better-sqlite3'))(${JSON.stringify(file)}); db.exec('BEGIN IMMEDIATE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});`], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
  });
}

describe('SQLite locked past the busy timeout', () => {
  let app: TestApp;
  let lock: ChildProcess | null = null;
  before(async () => {
    app = await startApp('sqlite', { databaseTimeoutMs: 300 });
  });
  after(async () => {
    lock?.kill('SIGKILL');
    await app?.close();
  });

  test('a write waits the busy timeout, then 503; nothing is left; it works once the lock is gone', async (t) => {
    const { org, adminKey } = await app.bootstrap();
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'before-lock' } })).status, 201);
    const lockMs = 4000;
    lock = await holdWriteLock(app.databaseUrl.slice('sqlite:'.length), lockMs);
    const exited = new Promise((resolve) => lock!.once('exit', resolve));
    const r = await timed(() => app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'while-locked' } }));
    t.diagnostic(`SQLite locked: a write answered ${r.value.status} in ${Math.round(r.ms)} ms (busy timeout 300 ms)`);
    assertUnavailable(r.value, /database/, 'a write while another process holds the lock');
    assert.ok(r.ms < lockMs - 500, `answered before the lock ended (${Math.round(r.ms)} ms)`);
    assert.equal((await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: adminKey })).status, 200, 'reads go on (WAL)');
    await exited;
    lock = null;
    const names = (await app.request('GET', `/gateway/v1/orgs/${org}/teams`, { key: adminKey })).body.teams.map((t: { name: string }) => t.name);
    assert.ok(!names.includes('while-locked'));
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: 'while-locked' } })).status, 201);
  });
});

describe('SQLite full (max_page_count reached)', () => {
  let app: TestApp;
  before(async () => {
    // Inline: the management writes go through the connection whose page limit the test lowers.
    app = await startApp('sqlite', { managementIsolate: 'inline' });
  });
  after(async () => {
    await app?.close();
  });

  test('writes are 503 once the database is full, each all or nothing; writes work again when there is room', async () => {
    const { org, adminKey } = await app.bootstrap();
    const db = app.gw.core.database.db;
    const pages = await sql<{ page_count: number }>`pragma page_count`.execute(db);
    await sql.raw(`pragma max_page_count = ${pages.rows[0]!.page_count}`).execute(db);
    let refused: string | null = null;
    try {
      for (let i = 0; i < 500 && refused === null; i++) {
        const name = `team-${i}-${'x'.repeat(50)}`.slice(0, 60);
        const r = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name } });
        if (r.status === 503) {
          assertUnavailable(r, /database/, 'a write to a full database');
          refused = name;
        } else assert.equal(r.status, 201, r.text);
      }
    } finally {
      await sql.raw('pragma max_page_count = 1073741823').execute(db);
    }
    assert.ok(refused, 'the database filled up');
    const team = await app.request('GET', `/gateway/v1/teams/${refused}`, { key: adminKey });
    assert.equal(team.status, 404, 'the refused team was not written');
    const audit = await sql<{ n: number }>`select count(*) as n from audit_events where target_name = ${refused}`.execute(db);
    assert.equal(Number(audit.rows[0]!.n), 0, 'nor its audit event');
    assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: refused } })).status, 201);
  });
});

describe('Redis down: browser sessions, sign-in limits', { skip: !canRunPrivateRedis() && 'no redis-server on this machine' }, () => {
  let redis: PrivateRedis;
  let redisRelay: FaultProxy;
  let app: TestApp;
  before(async () => {
    redis = await PrivateRedis.start();
    redisRelay = await FaultProxy.start({ port: redis.port });
    app = await startApp('sqlite', { redisUrl: `redis://127.0.0.1:${redisRelay.port}`, redisTimeoutMs: 500, authFailureLimit: 1000 });
  });
  after(async () => {
    redisRelay?.heal();
    await app?.close();
    await redisRelay?.close();
    await redis?.kill();
  });

  test('at start-up a sign-in waits for the Redis connection under way instead of a 503 (a slow first connect)', async () => {
    // Every byte to and from Redis is held 300 ms, so the connection's first `ready` comes a second or so
    // after the gateway listens: a sign-in in that window used to be refused as if Redis were down.
    const slowRelay = await FaultProxy.start({ port: redis.port });
    slowRelay.set('delay', 300);
    const slow = await startApp('sqlite', { redisUrl: `redis://127.0.0.1:${slowRelay.port}`, redisTimeoutMs: 5000 });
    try {
      const { org } = await slow.bootstrap();
      const browser = await signIn(slow, `admin@${org}.example`);
      assert.equal((await browser.get('/settings')).status, 200);
    } finally {
      await slow.close();
      await slowRelay.close();
    }
  });

  test('partitioned: a session request is 503 within the Redis timeout; bad keys are still 401', async (t) => {
    const { org } = await app.bootstrap();
    const browser = await signIn(app, `admin@${org}.example`);
    assert.equal((await browser.get('/settings')).status, 200);
    redisRelay.set('blackhole');
    try {
      const page = await timed(() => browser.get('/settings'));
      t.diagnostic(`Redis partitioned: a page with a session answered ${page.value.status} in ${Math.round(page.ms)} ms`);
      assert.equal(page.value.status, 503, `${page.value.status} ${page.value.location ?? ''}`);
      assert.ok(page.ms < 500 + MARGIN_MS, `answered in ${Math.round(page.ms)} ms`);
      const forward = await app.request('GET', '/auth/verify', { headers: { cookie: browser.cookieHeader('/'), accept: 'application/json' } });
      assertUnavailable(forward, /Redis/, '/auth/verify with a session cookie, Redis partitioned');
      const bad = await timed(() => app.request('GET', '/auth/verify', { headers: { authorization: basic(generateKey('user').key) } }));
      t.diagnostic(`Redis partitioned: an unknown key answered ${bad.value.status} in ${Math.round(bad.ms)} ms`);
      assert.equal(bad.value.status, 401);
      assert.ok(bad.ms < 500 + MARGIN_MS, `answered in ${Math.round(bad.ms)} ms`);
    } finally {
      redisRelay.heal();
    }
    await within(5000, 'Redis back', async () => (await browser.get('/settings')).status === 200);
  });

  test('a session request is 503 (not 401, not a redirect to the login); API keys are checked against the database; bad keys are 401 without waiting', async (t) => {
    const { org } = await app.bootstrap();
    const browser = await signIn(app, `admin@${org}.example`);
    assert.equal((await browser.get('/settings')).status, 200);
    const user = await app.createUser({ org, username: `u-${org}` });
    await redis.kill();

    const page = await browser.get('/settings');
    assert.equal(page.status, 503, `a page with a session: ${page.status} ${page.location ?? ''} ${page.text.slice(0, 200)}`);
    assert.match(page.text, /<code>unavailable<\/code>/);
    assert.match(page.headers.get('retry-after') ?? '', /^[1-9]\d*$/);

    const cookie = browser.cookieHeader('/');
    const forward = await app.request('GET', '/auth/verify', { headers: { cookie, accept: 'application/json' } });
    assertUnavailable(forward, /Redis/, '/auth/verify with a session cookie');
    const api = await app.request('GET', '/gateway/v1/me', { headers: { cookie } });
    assertUnavailable(api, /Redis/, 'the management API with a session cookie');

    assert.equal((await verify(app, user.key)).status, 200, 'an API key never seen is looked up in the database');
    const bad = await timed(() => app.request('GET', '/auth/verify', { headers: { authorization: basic(generateKey('user').key) } }));
    assert.equal(bad.value.status, 401, 'an unknown key is still 401 (the failure limiter counts in memory)');
    t.diagnostic(`Redis down: an unknown key answered ${bad.value.status} in ${Math.round(bad.ms)} ms`);
    assert.ok(bad.ms < 1500, `and answered without waiting for Redis (${Math.round(bad.ms)} ms)`);
  });
});

describe('the key cache: stale-while-unavailable', () => {
  const ttlMs = 1000;
  const staleMs = 10_000;
  let now = 1_000_000;
  let down = false;
  let lookups = 0;
  const good = generateKey('user');
  const never = generateKey('user');
  const principal = { type: 'user', via: 'api_key', id: 'u1', orgId: 'o1', orgSlug: 'o', username: 'u', email: null, displayName: 'u', orgRole: 'member', instanceAdmin: false, teams: [], keyId: good.keyId } as unknown as Principal;
  const repo = {
    findByHash: (hash: string): Promise<ApiKeyRow | undefined> => {
      lookups++;
      if (down) return Promise.reject(errors.unavailable('the database'));
      return Promise.resolve(hash === good.hash ? ({ owner_type: 'user', revoked_at: null, expires_at: null } as unknown as ApiKeyRow) : undefined);
    },
  } as unknown as KeysRepository;
  const lastUsed = { record: () => {} } as unknown as LastUsedRecorder;
  const make = (stale: number) => {
    const invalidator = new CacheInvalidator();
    const v = new KeyVerifier(repo, lastUsed, invalidator, { ttlMs, negativeTtlMs: 500, maxEntries: 100, staleMs: stale }, () => now);
    v.registerOwnerLoader('user', () => Promise.resolve(principal));
    return { v, invalidator };
  };

  test('a cached key past its TTL keeps its answer while the database is unavailable, up to the stale bound', async () => {
    const { v } = make(staleMs);
    down = false;
    assert.equal((await v.verify(good.key)).ok, true);
    down = true;
    now += ttlMs + 1;
    assert.equal((await v.verify(good.key)).ok, true, 'stale');
    now += staleMs;
    await assert.rejects(v.verify(good.key), (e: Error & { code?: string }) => e.code === 'unavailable', 'past the stale bound: unavailable, not a verdict');
    await assert.rejects(v.verify(never.key), (e: Error & { code?: string }) => e.code === 'unavailable', 'a key never seen: unavailable, never "unknown"');
    down = false;
    assert.equal((await v.verify(good.key)).ok, true);
  });

  test('a cached miss is not a stale answer; an invalidation removes a stale entry; staleness 0 turns it off', async () => {
    const { v, invalidator } = make(staleMs);
    down = false;
    assert.equal((await v.verify(never.key)).ok, false);
    assert.equal((await v.verify(good.key)).ok, true);
    down = true;
    now += ttlMs + 1;
    await assert.rejects(v.verify(never.key), (e: Error & { code?: string }) => e.code === 'unavailable', 'a remembered miss past its TTL: unavailable, not 401');
    // As the poller applies a revocation read from the invalidation log.
    invalidator.applyLogged([{ seq: invalidator.mark() + 1, kind: 'key', keyHash: good.hash }], invalidator.mark() + 1);
    await assert.rejects(v.verify(good.key), (e: Error & { code?: string }) => e.code === 'unavailable', 'a key whose entry an invalidation removed');

    const off = make(0).v;
    down = false;
    assert.equal((await off.verify(good.key)).ok, true);
    down = true;
    now += ttlMs + 1;
    await assert.rejects(off.verify(good.key), (e: Error & { code?: string }) => e.code === 'unavailable');
    down = false;
  });

  test('after an unavailable lookup, stale keys are answered for a second without a lookup; then the database is tried again', async () => {
    const { v } = make(staleMs);
    down = false;
    assert.equal((await v.verify(good.key)).ok, true);
    down = true;
    now += ttlMs + 1;
    lookups = 0;
    assert.equal((await v.verify(good.key)).ok, true);
    assert.equal(lookups, 1);
    for (let i = 0; i < 5; i++) assert.equal((await v.verify(good.key)).ok, true);
    assert.equal(lookups, 1, 'no lookup within the breaker period');
    now += 1001;
    assert.equal((await v.verify(good.key)).ok, true);
    assert.equal(lookups, 2, 'tried again after it');
    down = false;
  });
});

describe('which driver errors mean "unavailable"', () => {
  test('connection, timeout and resource errors of both drivers, not bugs or conflicts', () => {
    const yes = [{ code: 'ECONNREFUSED' }, { code: '57P01' }, { code: '57P03' }, { code: '08006' }, { code: '53300' }, { code: '57014' }, { code: '40001' }, { code: '40P01' }, new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'), new Error('Query read timeout'), { code: 'SQLITE_BUSY' }, { code: 'SQLITE_BUSY_SNAPSHOT' }, { code: 'SQLITE_FULL' }, { code: 'SQLITE_IOERR_WRITE' }, { code: 'SQLITE_CANTOPEN' }, { code: 'SQLITE_READONLY' }, { code: 'SQLITE_NOMEM' }, { code: 'SQLITE_LOCKED' }, Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), {})];
    const no = [{ code: '23505' }, { code: '42601' }, { code: '42P01' }, { code: 'SQLITE_CONSTRAINT_UNIQUE' }, { code: 'SQLITE_ERROR' }, new Error('syntax error'), null, 'ECONNREFUSED'];
    for (const e of yes) assert.equal(isDatabaseUnavailable(e), true, JSON.stringify(e) + String(e));
    for (const e of no) assert.equal(isDatabaseUnavailable(e), false, JSON.stringify(e));
  });
});
