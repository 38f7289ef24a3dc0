import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

/**
 * The management API, pages and SSO run in a worker thread of their own (the
 * hot paths' isolate never sees an Express request); these check what that
 * split must not change: revocations act at once on the hot paths, the
 * worker sees the client's real address, /metrics covers both, and a dead
 * worker comes back while /auth/verify keeps answering.
 */
for (const dialect of dialects()) {
  describe(`the management worker (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;

    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    const verify = async (key: string) => (await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(key) } })).status;

    test('runs in a worker thread by default', () => {
      assert.ok(app.gw.management, 'a management worker was started');
      assert.ok(app.gw.management.threadId! > 0);
    });

    test('a key revoked through the management API fails on /auth/verify at once, every time', async () => {
      for (let i = 0; i < 15; i++) {
        const created = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `revoke-race-${i}` } });
        assert.equal(created.status, 201);
        // Cached by the hot path (main isolate) first...
        assert.equal(await verify(created.body.key), 200);
        assert.equal(await verify(created.body.key), 200);
        // ...then revoked in the worker: the very next request must fail.
        assert.equal((await app.request('DELETE', `/gateway/v1/keys/${created.body.id}`, { key: adminKey })).status, 204);
        assert.equal(await verify(created.body.key), 401, `round ${i}: the revoked key still passed /auth/verify`);
      }
    });

    test('a rotated key (grace 0) and a deactivated user stop at once on the hot path', async () => {
      const created = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'rotate-me' } });
      assert.equal(await verify(created.body.key), 200);
      const rotated = await app.request('POST', `/gateway/v1/keys/${created.body.id}/rotate`, { key: adminKey, body: { grace_seconds: 0 } });
      assert.equal(rotated.status, 201);
      assert.equal(await verify(created.body.key), 401);
      assert.equal(await verify(rotated.body.key), 200);

      const dana = await app.createUser({ org, username: `dana-${dialect}` });
      assert.equal(await verify(dana.key), 200);
      assert.equal((await app.request('DELETE', `/gateway/v1/orgs/${org}/users/${dana.username}`, { key: adminKey })).status, 204);
      assert.equal(await verify(dana.key), 401);
      assert.equal((await app.request('PATCH', `/gateway/v1/orgs/${org}/users/${dana.username}`, { key: adminKey, body: { status: 'active' } })).status, 200);
      assert.equal(await verify(dana.key), 200, 'reactivated');
    });

    test('the worker sees the client\'s address; a client cannot claim another through the internal header', async () => {
      const k = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'addr-1' } });
      await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey, headers: { 'X-Trackgate-Peer': '203.0.113.9' } });
      const k2 = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'addr-2' } });
      // Loopback is a trusted proxy by default, so its X-Forwarded-For is believed, as before the split.
      await app.request('DELETE', `/gateway/v1/keys/${k2.body.id}`, { key: adminKey, headers: { 'X-Forwarded-For': '198.51.100.7' } });
      const events = (await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=50`, { key: adminKey })).body.events as any[];
      const first = events.find((e) => e.action === 'key.revoke' && e.target.id === k.body.id);
      const second = events.find((e) => e.action === 'key.revoke' && e.target.id === k2.body.id);
      assert.match(first.ip, /^(::ffff:)?127\.0\.0\.1$/, 'the address of the client\'s connection, not the claimed one');
      assert.equal(second.ip, '198.51.100.7');
    });

    test('request ids are kept across the hop', async () => {
      const r = await app.request('GET', '/gateway/v1/me', { key: adminKey, headers: { 'X-Request-Id': 'abc-123-management' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-request-id'), 'abc-123-management');
      // Loopback is a trusted proxy by default: its id is the one of the error body and of the audit event too.
      const missing = await app.request('GET', `/gateway/v1/orgs/${org}/users/nobody-${dialect}`, { key: adminKey, headers: { 'X-Request-Id': 'abc-124-management' } });
      assert.equal(missing.status, 404);
      assert.equal(missing.headers.get('x-request-id'), 'abc-124-management');
      assert.equal(missing.body.error.request_id, 'abc-124-management');
      const created = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: `rid-${dialect}` }, headers: { 'X-Request-Id': 'abc-125-management' } });
      assert.equal(created.status, 201);
      const events = (await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=50`, { key: adminKey })).body.events as Array<{ action: string; request_id: string | null; target: { id: string } }>;
      assert.equal(events.find((e) => e.action === 'key.create' && e.target.id === created.body.id)?.request_id, 'abc-125-management');
      // An unusable id is replaced once, by the main thread, and the worker answers with that one.
      const bad = await app.request('GET', '/gateway/v1/me', { key: adminKey, headers: { 'X-Request-Id': 'not a valid id!' } });
      assert.equal(bad.status, 200);
      assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    });

    test('/metrics has the process metrics and the management API\'s request counters, each name once', async () => {
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
      const text = (await app.request('GET', '/metrics')).text;
      assert.match(text, /trackgate_http_requests_total\{[^}]*route="\/gateway\/v1\/me"[^}]*\} \d+/);
      assert.match(text, /trackgate_process_cpu_seconds_total/);
      assert.match(text, /trackgate_key_cache_entries \d+/);
      const types = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
      assert.equal(new Set(types).size, types.length, 'no metric declared twice');
    });

    test('a body too large for the management API gets 413 with the request id, and both isolates keep serving', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
      const r = await fetch(`${app.url}/gateway/v1/me/keys`, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: big });
      assert.equal(r.status, 413);
      const body = (await r.json()) as { error: { code: string; request_id: string } };
      assert.equal(body.error.code, 'payload_too_large');
      assert.equal(r.headers.get('x-request-id'), body.error.request_id);
      // Express's own limit (64 KB) answers first when the length is announced; the main thread's (1 MB) is the backstop.
      const medium = await fetch(`${app.url}/gateway/v1/me/keys`, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'y'.repeat(100 * 1024) }) });
      assert.equal(medium.status, 413);
      await medium.text();
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
      assert.equal(await verify(adminKey), 200);
    });

    test('a worker that dies is started again; /auth/verify keeps answering meanwhile', async () => {
      const m = app.gw.management!;
      const before = m.threadId;
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
      await m.kill();
      assert.equal(await verify(adminKey), 200, 'the hot path does not depend on the worker');
      const during = await app.request('GET', '/gateway/v1/me', { key: adminKey });
      assert.ok([200, 503].includes(during.status), `management answers 503 while the worker restarts (got ${during.status})`);
      if (during.status === 503) {
        assert.equal(during.body.error.code, 'management_unavailable');
        assert.equal(during.headers.get('retry-after'), '1');
      }
      const deadline = Date.now() + 20_000;
      let status = during.status;
      while (status !== 200 && Date.now() < deadline) {
        await sleep(100);
        status = (await app.request('GET', '/gateway/v1/me', { key: adminKey })).status;
      }
      assert.equal(status, 200, 'the management API is back');
      assert.equal(m.restarts, 1);
      assert.notEqual(m.threadId, before);
      // Revocations still reach the hot path from the new worker.
      const k = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'after-restart' } });
      assert.equal(await verify(k.body.key), 200);
      assert.equal((await app.request('DELETE', `/gateway/v1/keys/${k.body.id}`, { key: adminKey })).status, 204);
      assert.equal(await verify(k.body.key), 401);
    });
  });
}

describe('the management API inline (TRACKGATE_MANAGEMENT_ISOLATE=inline)', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp('sqlite', { managementIsolate: 'inline' });
  });
  after(() => app.close());

  test('serves the same API from the main thread', async () => {
    assert.equal(app.gw.management, null);
    const { adminKey } = await app.bootstrap();
    assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
    const created = await app.request('POST', '/gateway/v1/me/keys', { key: adminKey, body: { name: 'inline' } });
    assert.equal((await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(created.body.key) } })).status, 200);
    assert.equal((await app.request('DELETE', `/gateway/v1/keys/${created.body.id}`, { key: adminKey })).status, 204);
    assert.equal((await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(created.body.key) } })).status, 401);
    const text = (await app.request('GET', '/metrics')).text;
    assert.match(text, /trackgate_http_requests_total\{[^}]*route="\/gateway\/v1\/me"/);
  });

  test('a 500 from Express answers a generic body; the details go to the log', async () => {
    const { adminKey } = await app.bootstrap();
    const repo = app.gw.core.store.repos.teams;
    const original = repo.teamsOfUser.bind(repo);
    repo.teamsOfUser = async () => {
      throw new Error('database exploded: SECRET-INTERNAL-DETAIL');
    };
    try {
      const r = await app.request('GET', '/gateway/v1/me', { key: adminKey });
      assert.equal(r.status, 500);
      assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'request_id']);
      assert.equal(r.body.error.message, 'internal error');
      assert.ok(!r.text.includes('SECRET-INTERNAL-DETAIL'));
    } finally {
      repo.teamsOfUser = original;
    }
    assert.match(readFileSync(app.logFile, 'utf8'), /SECRET-INTERNAL-DETAIL/);
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

// Under a burst, the worker's connections to its own socket failed with EAGAIN (its listen backlog
// full while its thread was busy), and a running worker's requests were answered 503 "restarting".
// Reproduced for real: the worker's thread is held in SQLite's busy wait by a write lock another
// process holds; a burst of requests reaches it as messages meanwhile, and then connections nobody
// has accepted yet fill the backlog of its socket. When the lock goes, the worker dispatches the
// burst first (its messages were there first) and connects to a full backlog.
// SQLite only: PostgreSQL's lock waits do not block the worker's thread.
describe('the management worker under a burst, its socket\'s backlog full (sqlite)', () => {
  let app: TestApp;
  let org: string;
  let adminKey: string;
  before(async () => {
    app = await startApp('sqlite');
    ({ org, adminKey } = await app.bootstrap());
  });
  after(() => app.close());

  test('500 concurrent management requests are all answered, none 503 "restarting"', { timeout: 60_000 }, async (t) => {
    const m = app.gw.management!;
    const victim = await app.createUser({ org, username: 'burst-victim' });
    const lock = await holdWriteLock(app.databaseUrl.slice('sqlite:'.length), 2000);
    const fillers: net.Socket[] = [];
    const statuses = new Map<string, number>();
    try {
      // A write the worker's thread now waits for, synchronously.
      const blocked = app.request('DELETE', `/gateway/v1/orgs/${org}/users/${victim.username}`, { key: adminKey });
      await sleep(200);
      const burst = Promise.all(
        Array.from({ length: 500 }, async () => {
          const r = await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(adminKey) } });
          const text = await r.text();
          const label = r.status >= 500 ? `${r.status} ${JSON.parse(text).error?.code}` : String(r.status);
          statuses.set(label, (statuses.get(label) ?? 0) + 1);
        }),
      );
      const deadline = Date.now() + 1500;
      while (m.pendingRequests < 501 && Date.now() < deadline) await sleep(10);
      for (let i = 0; i < 600; i++) fillers.push(net.connect(m.socketPath).on('error', () => {}));
      await burst;
      assert.equal((await blocked).status, 204);
    } finally {
      for (const s of fillers) s.destroy();
      lock.kill();
    }
    assert.ok(!statuses.has('503 management_unavailable'), `a running worker said it was restarting: ${JSON.stringify([...statuses])}`);
    // Only a worker whose socket still refuses after ~10 s of retries says it is busy (a loaded machine); never "restarting".
    assert.ok([...statuses.keys()].every((s) => s === '200' || s === '503 management_busy'), JSON.stringify([...statuses]));
    assert.ok((statuses.get('200') ?? 0) >= 450, JSON.stringify([...statuses]));
    // Whether the worker met the full backlog this time depends on the order its thread sees the two at wake-up (most runs do).
    t.diagnostic(`requests whose connection was refused (EAGAIN) and retried: ${(readFileSync(app.logFile, 'utf8').match(/backlog full\); retrying/g) ?? []).length}`);
  });
});

for (const dialect of dialects()) {
  describe(`the management worker under a burst (${dialect})`, () => {
    let app: TestApp;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect);
      ({ adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    // Under a burst, the worker's connections to its own socket failed with EAGAIN (its backlog full
    // while the thread was busy), and the requests were answered 503 "restarting" by a running worker.
    test('500 concurrent management requests are all answered, none 503 "restarting"', async () => {
      const statuses = new Map<string, number>();
      await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const r =
            // A key every 25th request: 20 in all, within the cap on keys per user.
            i % 25 === 0
              ? await fetch(`${app.url}/gateway/v1/me/keys`, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: JSON.stringify({ name: `burst-${i}` }) })
              : await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(adminKey) } });
          const text = await r.text();
          const label = r.status >= 500 ? `${r.status} ${text}` : String(r.status);
          statuses.set(label, (statuses.get(label) ?? 0) + 1);
          if (r.status === 201) app.keys.add(JSON.parse(text).key);
        }),
      );
      assert.ok(![...statuses.keys()].some((s) => s.includes('management_unavailable')), `a running worker said it was restarting: ${JSON.stringify([...statuses])}`);
      assert.deepEqual([...statuses.keys()].sort(), ['200', '201'], JSON.stringify([...statuses]));
    });
  });
}

// A crashed process left its management socket folder in the temp directory for good.
describe('stale management socket folders', () => {
  test('a folder whose process is gone is removed at start; a live process\'s folder is kept', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => dead.once('exit', () => resolve(dead.pid!)));
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const deadDir = mkdtempSync(join(tmpdir(), `trackgate-mgmt-${deadPid}-`));
    const liveDir = mkdtempSync(join(tmpdir(), `trackgate-mgmt-${live.pid}-`));
    writeFileSync(join(deadDir, 'management.sock'), '');
    writeFileSync(join(liveDir, 'management.sock'), '');
    let app: TestApp | null = null;
    try {
      app = await startApp('sqlite');
      assert.equal(existsSync(deadDir), false, 'the dead process\'s folder is gone');
      assert.equal(existsSync(liveDir), true, 'the live process\'s folder is kept');
      assert.ok(existsSync(dirname(app.gw.management!.socketPath)), 'and this instance\'s own');
      assert.match(basename(dirname(app.gw.management!.socketPath)), new RegExp(`^trackgate-mgmt-${process.pid}-`));
    } finally {
      await app?.close();
      live.kill();
      rmSync(deadDir, { recursive: true, force: true });
      rmSync(liveDir, { recursive: true, force: true });
    }
  });
});

/**
 * With Redis, both isolates of one instance subscribe to the invalidation channel. The worker's own
 * invalidation reaches the main isolate over the BroadcastChannel before the API answers; its Redis echo
 * must not empty the main isolate's key cache a second time, after it refilled (a cached key would then
 * need a lookup again: slower, and refused with 429 from an address blocked for failed credentials).
 */
const ECHO_REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;
if (ECHO_REDIS_URL) {
  describe('the management worker with Redis: its own invalidations are not heard twice', () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;

    before(async () => {
      app = await startApp('sqlite', { redisUrl: ECHO_REDIS_URL, redisKeyPrefix: `tgtest-echo-${process.pid}-${Date.now().toString(36)}:` });
      ({ org, adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    test('a key re-cached after a change made through the worker stays cached', async () => {
      assert.ok(app.gw.management, 'the management worker runs');
      const verify = async () => (await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(adminKey) } })).status;
      for (let i = 0; i < 3; i++) {
        // A new user empties every key cache of the instance (the worker's, and the main isolate's over the BroadcastChannel).
        await app.createUser({ org, username: `echo-${i}` });
        assert.equal(await verify(), 200);
        assert.ok(app.gw.core.keyVerifier.size >= 1, 'the key was cached again by /auth/verify');
        // The Redis echo of that invalidation, if it were taken, arrives within milliseconds.
        await sleep(300);
        assert.ok(app.gw.core.keyVerifier.size >= 1, `round ${i}: the main isolate's key cache was emptied again by its own invalidation's echo from Redis`);
      }
    });
  });
}
