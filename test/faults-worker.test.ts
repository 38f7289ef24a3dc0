/**
 * Issue 15's fault table, the management worker rows: the isolate that runs the management API, the
 * pages and the login (src/management/management-worker.ts) crashed, crashed again as soon as it is back
 * (restarted), and busy (its thread held in SQLite's busy wait by a write lock another process holds),
 * under a steady load of verifications (/auth/verify and through the proxy). The worker is a thread of
 * the gateway process, so these run the gateway in the test's process (startApp) to reach it; every
 * request still goes over real HTTP. Each row checks every answer of the load (/auth/verify and the proxy
 * do not notice), what the management API answers meanwhile, and that it comes back by itself
 * (docs/OPERATIONS.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { basic, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { LoadDriver } from './support/faults/load.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';

/** How long the management API may take to come back after its worker died (a loaded machine starts a thread slowly). */
const BACK_WITHIN_MS = 60_000;

/** Polls GET /gateway/v1/me until stopped, recording each answer (status, code, Retry-After, when). */
function pollManagement(app: TestApp, key: string) {
  const answers: Array<{ at: number; ms: number; status: number; code: string | null; retryAfter: string | null }> = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const at = Date.now();
      try {
        const r = await fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(key) }, signal: AbortSignal.timeout(30_000) });
        const text = await r.text();
        let code: string | null = null;
        if (r.status >= 400) code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
        answers.push({ at, ms: Date.now() - at, status: r.status, code, retryAfter: r.headers.get('retry-after') });
      } catch (err) {
        // The connection closed without a (whole) answer: what a request whose answer had begun gets when the worker dies.
        answers.push({ at, ms: Date.now() - at, status: 0, code: (err as Error).name === 'TimeoutError' ? 'timeout' : 'cut', retryAfter: null });
      }
      await sleep(25);
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await done;
      return answers;
    },
  };
}

/** Holds SQLite's write lock on `file` from another process for `ms`; resolves once it holds it. */
function holdWriteLock(file: string, ms: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `const db = new (require('better-sqlite3'))(${JSON.stringify(file)}); db.exec('BEGIN IMMEDIATE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});`], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
  });
}

describe('faults: the management worker (sqlite)', { timeout: 180_000 }, () => {
  let upstream: StubUpstream;
  let app: TestApp;
  let org: string;
  let adminKey: string;
  const good: string[] = [];

  before(async () => {
    upstream = await startUpstream();
    app = await startApp('sqlite', { upstreamUrl: upstream.url });
    ({ org, adminKey } = await app.bootstrap());
    good.push(adminKey);
    for (let i = 0; i < 3; i++) good.push((await app.createUser({ org, username: `load-${i}` })).key);
  });
  after(async () => {
    await app.close();
    await upstream.close();
  });

  const load = () => new LoadDriver({ targets: [{ name: 'a', url: app.url }], good, durationMs: 90_000, concurrency: 4 }).start();

  /** The load's own checks: no 500, no good key refused, /auth/verify and the proxy answering 200 throughout. */
  function assertHotPathsUnaffected(l: LoadDriver): void {
    l.assertInvariants(0);
    l.assertOnlyWithin('a good key not answered 200 by /auth/verify or the proxy', (s) => s.revokedAt === null && s.status !== 200, []);
    l.assertAllAnsweredWithin(5000);
  }

  /** The management answers of one outage: 200, or 503 management_unavailable with Retry-After: 1; back to 200 after. */
  function assertOutageAnswers(answers: Array<{ status: number; code: string | null; retryAfter: string | null }>, kills: number): void {
    const kinds = new Set(answers.map((a) => `${a.status} ${a.code ?? ''} ${a.retryAfter ?? ''}`.trim()));
    // A request in flight when the worker dies: 503 management_unavailable, or its connection closed once the answer had begun.
    for (const k of kinds) assert.ok(k === '200' || k === '503 management_unavailable 1' || k === '0 cut', `management answered only 200 or 503 management_unavailable with Retry-After: 1: ${JSON.stringify([...kinds])}`);
    assert.ok(answers.filter((a) => a.code === 'cut').length <= kills, 'at most the (one, serial) poll request in flight at each crash was cut');
    assert.equal(answers.at(-1)?.status, 200, 'the management API is back');
  }

  async function waitBack(poll: ReturnType<typeof pollManagement>, since: number): Promise<number> {
    const deadline = Date.now() + BACK_WITHIN_MS;
    for (;;) {
      const back = poll.answers.find((a) => a.at > since && a.status === 200);
      if (back) return back.at - since;
      assert.ok(Date.now() < deadline, `the management API came back within ${BACK_WITHIN_MS} ms`);
      await sleep(20);
    }
  }

  test('worker crashed: the management API answers 503 management_unavailable (Retry-After: 1) until it is back by itself; /auth/verify and the proxy do not notice', async (t) => {
    const m = app.gw.management!;
    const restarts = m.restarts;
    const l = load();
    const poll = pollManagement(app, adminKey);
    let backAfter: number;
    try {
      await sleep(800);
      const killedAt = l.mark('fault');
      await m.kill();
      backAfter = await waitBack(poll, killedAt);
      await sleep(800);
    } finally {
      await poll.stop();
      await l.stop();
    }
    assert.equal(m.restarts, restarts + 1);
    // What an operator sees: the restart counted in /metrics.
    assert.match((await app.request('GET', '/metrics')).text, new RegExp(`trackgate_management_worker_restarts ${restarts + 1}\\b`));
    assertHotPathsUnaffected(l);
    assertOutageAnswers(poll.answers, 1);
    const counts: Record<string, number> = {};
    for (const a of poll.answers) counts[`${a.status} ${a.code ?? ''}`.trim()] = (counts[`${a.status} ${a.code ?? ''}`.trim()] ?? 0) + 1;
    t.diagnostic(`back after ${backAfter} ms; management: ${JSON.stringify(counts)}; load: ${JSON.stringify(l.summary())}`);
  });

  test('worker restarted again and again (killed as soon as it is back, three times): each time back by itself, the restart delay does not grow while it starts cleanly', async (t) => {
    const m = app.gw.management!;
    const restarts = m.restarts;
    const l = load();
    const poll = pollManagement(app, adminKey);
    const backs: number[] = [];
    try {
      await sleep(500);
      for (let i = 0; i < 3; i++) {
        const killedAt = Date.now();
        await m.kill();
        backs.push(await waitBack(poll, killedAt));
      }
      await sleep(500);
    } finally {
      await poll.stop();
      await l.stop();
    }
    assert.equal(m.restarts, restarts + 3);
    assertHotPathsUnaffected(l);
    assertOutageAnswers(poll.answers, 3);
    // A worker that became ready resets the backoff (250 ms): the third restart is not slower by the doubling.
    t.diagnostic(`back after ${JSON.stringify(backs)} ms; load: ${JSON.stringify(l.summary())}`);
  });

  // FINDING (issue 15, not fixed here): on SQLite, a write lock held elsewhere (another process, a backup,
  // the sqlite3 shell, a long write of the worker) stalls the main isolate for up to the busy timeout (5 s)
  // at each last_used flush: better-sqlite3 waits synchronously, on the thread that serves /auth/verify and
  // the proxy. Measured: a 3 s lock, flushes every 50 ms: /auth/verify's slowest answer 2.7 s (10 answers in
  // 3 s); with no flush in that time: 217 ms (682 answers). Left as a todo until the storage layer flushes
  // without waiting on the hot paths' thread.
  test('on SQLite, a write lock held elsewhere does not stall /auth/verify (last_used flushes on the main thread)', { todo: 'FINDING: the main isolate\'s last_used flush waits synchronously in SQLite\'s busy timeout' }, async () => {
    const lock = await holdWriteLock(app.databaseUrl.slice('sqlite:'.length), 3000);
    const took: number[] = [];
    try {
      const t0 = Date.now();
      while (Date.now() - t0 < 2500) {
        const a = Date.now();
        const r = await fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(adminKey) } });
        await r.text();
        took.push(Date.now() - a);
      }
    } finally {
      lock.kill();
    }
    assert.ok(Math.max(...took) < 1000, `/auth/verify stalled behind the lock: slowest ${Math.max(...took)} ms of ${took.length} answers`);
  });
});

// The worker's own row: its thread held up must not hold up the hot paths. last_used is not flushed during
// it (see the finding above), so that what is measured is the worker's isolation.
describe('faults: the management worker, busy (sqlite)', { timeout: 120_000 }, () => {
  let upstream: StubUpstream;
  let app: TestApp;
  let org: string;
  let adminKey: string;
  const good: string[] = [];

  before(async () => {
    upstream = await startUpstream();
    app = await startApp('sqlite', { upstreamUrl: upstream.url, lastUsedFlushMs: 3_600_000 });
    ({ org, adminKey } = await app.bootstrap());
    good.push(adminKey);
    for (let i = 0; i < 3; i++) good.push((await app.createUser({ org, username: `busy-load-${i}` })).key);
  });
  after(async () => {
    await app.close();
    await upstream.close();
  });

  test('worker busy (its thread held 3 s in SQLite\'s busy wait): management requests wait and are answered, none 5xx; a revocation made meanwhile takes effect when it commits; /auth/verify and the proxy do not notice', async (t) => {
    const victim = await app.createUser({ org, username: `busy-victim-${Date.now().toString(36)}` });
    const keyRow = (await app.request('GET', '/gateway/v1/me/keys', { key: victim.key })).body as { keys: Array<{ id: string }> };
    const l = new LoadDriver({ targets: [{ name: 'a', url: app.url }], good: [...good, victim.key], durationMs: 90_000, concurrency: 4 }).start();
    const poll = pollManagement(app, adminKey);
    let lock: ChildProcess | null = null;
    let revokedAt = 0;
    try {
      await sleep(500);
      lock = await holdWriteLock(app.databaseUrl.slice('sqlite:'.length), 3000);
      l.mark('fault');
      // A write the worker's thread now waits for, synchronously (better-sqlite3 in busy_timeout).
      l.revoking(victim.key);
      const revoking = app.request('DELETE', `/gateway/v1/keys/${keyRow.keys[0]!.id}`, { key: adminKey });
      const revoked = await revoking;
      revokedAt = Date.now();
      l.revoke(victim.key, revokedAt);
      assert.equal(revoked.status, 204, revoked.text);
      l.mark('heal');
      await sleep(1000);
    } finally {
      lock?.kill();
      await poll.stop();
      await l.stop();
    }
    l.assertInvariants(0);
    l.assertOnlyWithin('a good key not answered 200 by /auth/verify or the proxy', (s) => s.revokedAt === null && s.status !== 200, []);
    l.assertAllAnsweredWithin(5000);
    // The revocation took effect on the hot path when it committed (assertInvariants(0): no 200 for the key
    // sent after the DELETE was answered), and it was tried afterwards.
    assert.ok(l.where((s) => s.revokedAt === revokedAt && s.at > revokedAt).length > 0, 'the revoked key was tried after its revocation');
    const kinds = new Set(poll.answers.map((a) => a.status));
    assert.deepEqual([...kinds], [200], `management answers while the worker was busy: ${JSON.stringify(poll.answers.filter((a) => a.status !== 200))}`);
    const slowest = Math.max(...poll.answers.map((a) => a.ms));
    assert.ok(slowest >= 1000, `the management API was held up by the busy worker (slowest ${slowest} ms)`);
    const during = l.window('fault', 'heal');
    const hot = l.where((s) => s.at >= during.from && s.at <= during.to);
    assert.ok(hot.length >= 20, `the hot paths kept answering while the worker was busy: ${hot.length} answers`);
    t.diagnostic(`management slowest ${slowest} ms; hot-path answers while busy: ${hot.length}, slowest ${Math.max(...hot.map((s) => s.doneAt - s.at))} ms; load: ${JSON.stringify(l.summary())}`);
  });
});
