/**
 * Issue 15's fault table, the PostgreSQL and Redis rows, under load and with two real gateway processes:
 * one PostgreSQL and one redis-server of this test's own, each reached through a FaultProxy, and two
 * `trackgate serve` processes A and B (one deployment: same secret, same database, same Redis). A steady
 * load of verifications (/auth/verify and through the proxy) runs on both while each row breaks one
 * dependency (down, restarted, slow, partitioned); every answer is asserted on (no 500, no 401 for a good
 * key, no 200 for a revoked key past the bound, 503 only within the fault and only the documented one).
 * Each row's figures go to t.diagnostic, for docs/OPERATIONS.md. What is tested elsewhere, single
 * instance or in-process (test/dependency-unavailable.test.ts, test/invalidation-bound.test.ts), is not
 * repeated here: this is the two-process, under-load matrix.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { GatewayProcess } from './support/faults/gateway-process.ts';
import { LoadDriver } from './support/faults/load.ts';
import type { Sample } from './support/faults/load.ts';
import { canRunPrivatePostgres, PrivatePostgres } from './support/faults/postgres.ts';
import { PrivateRedis, canRunPrivateRedis } from './support/faults/redis.ts';
import { bootstrapAdmin, createKeys, revokeKey, sqliteDeployment } from './support/faults/seed.ts';
import { FaultProxy } from './support/faults/tcp-proxy.ts';
import { TrackingApi } from './support/faults/tracking-api.ts';
import { basic, sleep } from './support/app.ts';

const DB_TIMEOUT_MS = 1000;
const REDIS_TIMEOUT_MS = 500;
/** Short, so that cached keys pass their TTL during a fault and take the stale-while-unavailable path. */
const KEY_CACHE_TTL_SECONDS = 3;
/** What a loaded machine (two cores, other test runs) may add to any bound here. */
const MARGIN_MS = 2500;
/** A revocation reaches the other instance within the poll (≤ 1 s with Redis down); the load's own timing adds a little. */
const REVOCATION_BOUND_MS = 1000 + 500;


const skip = !canRunPrivatePostgres() ? 'SKIPPED: no PostgreSQL server binaries' : !canRunPrivateRedis() ? 'SKIPPED: no redis-server' : false;

interface Answer {
  status: number;
  ms: number;
  text: string;
  retryAfter: string | null;
  contentType: string;
}

async function ask(url: string, init: RequestInit = {}): Promise<Answer> {
  const t0 = Date.now();
  const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(15_000), ...init });
  const text = await r.text();
  return { status: r.status, ms: Date.now() - t0, text, retryAfter: r.headers.get('retry-after'), contentType: r.headers.get('content-type') ?? '' };
}

const code = (a: Answer) => {
  try {
    return (JSON.parse(a.text) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    return null;
  }
};

function assertUnavailable(a: Answer, what: string): void {
  assert.equal(a.status, 503, `${what}: ${a.status} ${a.text.slice(0, 300)}`);
  assert.match(a.retryAfter ?? '', /^[1-9]\d*$/, `${what}: Retry-After`);
  assert.equal(code(a), 'unavailable', `${what}: ${a.text.slice(0, 300)}`);
}

describe('faults: PostgreSQL and Redis under load, two real trackgate processes', { skip, timeout: 300_000 }, () => {
  let dir: string;
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let pgRelay: FaultProxy;
  let redisRelay: FaultProxy;
  let api: TrackingApi;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let org: string;
  let adminKey: string;
  const good: string[] = [];
  const revoked: Array<{ key: string; revokedAt: number }> = [];
  /** Keys each Redis row revokes during its fault (used as good keys until then). */
  const spare: Array<{ id: string; key: string }> = [];
  /** Keys never used before a PostgreSQL row: nothing has them cached. */
  const unseen: Array<{ id: string; key: string }> = [];
  const gws = () => [a, b];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-fault-pgredis-'));
    pg = await PrivatePostgres.start();
    redis = await PrivateRedis.start();
    pgRelay = await FaultProxy.start({ port: pg.port });
    redisRelay = await FaultProxy.start({ port: redis.port });
    api = await TrackingApi.start();
    // The SQLite deployment's settings with the database replaced by PostgreSQL (through its relay) and Redis added.
    const env = sqliteDeployment(dir, {
      TRACKGATE_DATABASE_URL: `postgres://postgres@127.0.0.1:${pgRelay.port}/postgres`,
      TRACKGATE_REDIS_URL: `redis://127.0.0.1:${redisRelay.port}`,
      TRACKGATE_REDIS_KEY_PREFIX: `tgfault-${randomBytes(3).toString('hex')}:`,
      TRACKGATE_UPSTREAM_URL: api.url,
      TRACKGATE_DATABASE_TIMEOUT_MS: String(DB_TIMEOUT_MS),
      TRACKGATE_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
      TRACKGATE_KEY_CACHE_TTL_SECONDS: String(KEY_CACHE_TTL_SECONDS),
      TRACKGATE_MAX_KEYS_PER_PRINCIPAL: '1000',
    });
    a = await GatewayProcess.start(env); // applies the migrations
    [b, { org, adminKey }] = await Promise.all([GatewayProcess.start(env), bootstrapAdmin(env)]);
    const keys = await createKeys(a.url, adminKey, 4 + 4 * 2 + 4 + 2);
    for (const g of gws()) g.recordKeys([adminKey, ...keys.map((k) => k.key)]);
    good.push(adminKey, ...keys.slice(0, 4).map((k) => k.key));
    spare.push(...keys.slice(4, 12));
    unseen.push(...keys.slice(12, 16));
    for (const k of keys.slice(16)) revoked.push({ key: k.key, revokedAt: await revokeKey(a.url, adminKey, k.id) });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await pgRelay?.close();
    await redisRelay?.close();
    await redis?.kill();
    pg?.destroy();
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function readyz(g: GatewayProcess): Promise<{ status: number; ms: number; body: { status?: string; checks?: Record<string, string> } }> {
    const r = await ask(g.url + '/readyz');
    return { status: r.status, ms: r.ms, body: JSON.parse(r.text) as { status?: string; checks?: Record<string, string> } };
  }

  /** Milliseconds until `ok` holds for every instance's /readyz (polled every 100 ms); fails past `withinMs`. */
  async function untilReady(what: string, ok: (r: Awaited<ReturnType<typeof readyz>>) => boolean, withinMs: number): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const rs = await Promise.all(gws().map(readyz));
      if (rs.every(ok)) return Date.now() - t0;
      if (Date.now() - t0 > withinMs) assert.fail(`${what}: /readyz still ${JSON.stringify(rs)} after ${withinMs} ms`);
      await sleep(100);
    }
  }

  const newLoad = () =>
    new LoadDriver({
      targets: [
        { name: 'a', url: a.url },
        { name: 'b', url: b.url },
      ],
      good,
      revoked,
      durationMs: 60_000,
      requestTimeoutMs: 15_000,
      revokedShare: 0.3,
    }).start();

  /** Figures of a row: answers by kind, 503s, the slowest answer, per instance. */
  function figures(load: LoadDriver): Record<string, unknown> {
    const maxMs = (f: (s: Sample) => boolean) => Math.max(0, ...load.where(f).map((s) => s.doneAt - s.at));
    const unavailable = load.where((s) => s.status === 503);
    const fault = load.window('fault', 'fault').from;
    return {
      answers: load.samples.length,
      n503: unavailable.length,
      // When the 503s were sent, relative to the fault's start (and the keys they were for): when stale entries ran out.
      sent503: unavailable.length === 0 ? null : { firstMs: Math.min(...unavailable.map((s) => s.at)) - fault, lastMs: Math.max(...unavailable.map((s) => s.at)) - fault, keys: [...new Set(unavailable.map((s) => `${s.instance}:${s.key}`))].sort() },
      healedAtMs: load.window('healed', 'healed').from - fault,
      maxLatencyMs: { a: maxMs((s) => s.instance === 'a'), b: maxMs((s) => s.instance === 'b') },
      summary: load.summary(),
    };
  }

  /** The assertions every row makes on every answer of the load. */
  function invariants(load: LoadDriver, faultWindow: { from: number; to: number }): void {
    load.assertInvariants(REVOCATION_BOUND_MS);
    load.assertAllAnsweredWithin(DB_TIMEOUT_MS + MARGIN_MS + 2000);
    // Anything but 200/401 only during the fault, and then only the documented 503.
    load.assertOnlyWithin('an answer other than 200/401', (s) => s.status !== 200 && s.status !== 401, [faultWindow]);
    const others = load.where((s) => s.status !== 200 && s.status !== 401);
    for (const s of others) {
      assert.equal(s.status, 503, JSON.stringify(s));
      assert.equal(s.code, 'unavailable', JSON.stringify(s));
      assert.match(s.retryAfter ?? '', /^[1-9]\d*$/, JSON.stringify(s));
    }
  }

  /**
   * A PostgreSQL row: the load runs on both instances, `fault` breaks the database for `faultMs`, during it
   * the management API, a key nothing has cached, the login page and /readyz are asked; `heal` mends it.
   */
  async function pgRow(t: TestContext, fault: () => Promise<void> | void, heal: () => Promise<void> | void, faultMs = 4000) {
    const load = newLoad();
    const fresh = unseen.shift()!;
    const marker = `during-fault-${randomBytes(3).toString('hex')}`;
    let during: Record<string, Answer>;
    let readyAfterMs: number;
    let firstFreshOkMs: number;
    try {
      await sleep(1000);
      load.mark('fault');
      await fault();
      // Past the database timeout, so that a slow or partitioned database shows as one.
      await sleep(DB_TIMEOUT_MS + 500);
      const auth = { authorization: basic(adminKey), accept: 'application/json' };
      const [readA, write, verifyFreshA, verifyFreshB, login, readyA, readyB] = await Promise.all([
        ask(a.url + '/gateway/v1/me/keys', { headers: auth }),
        ask(b.url + '/gateway/v1/me/keys', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: marker }) }),
        ask(a.url + '/auth/verify', { headers: { authorization: basic(fresh.key) } }),
        ask(b.url + '/auth/verify', { headers: { authorization: basic(fresh.key) } }),
        ask(`${a.url}/login?org=${org}`, { headers: { accept: 'text/html' } }),
        ask(a.url + '/readyz'),
        ask(b.url + '/readyz'),
      ]);
      during = { readA, write, verifyFreshA, verifyFreshB, login, readyA, readyB };
      await sleep(Math.max(0, faultMs - (Date.now() - load.window('fault', null).from)));
      load.mark('heal');
      await heal();
      load.mark('healed');
      readyAfterMs = await untilReady('back after the database returned', (r) => r.status === 200 && r.body.status === 'ok', 15_000);
      // The key nothing had cached is checked again, on both.
      const t0 = Date.now();
      for (;;) {
        const [x, y] = await Promise.all([ask(a.url + '/auth/verify', { headers: { authorization: basic(fresh.key) } }), ask(b.url + '/auth/verify', { headers: { authorization: basic(fresh.key) } })]);
        if (x.status === 200 && y.status === 200) break;
        assert.ok(Date.now() - t0 < 10_000, `the unseen key after the fault: ${JSON.stringify([x, y])}`);
        await sleep(100);
      }
      firstFreshOkMs = load.mark('recovered') - load.window('healed', null).from;
      await sleep(1500);
      load.mark('end');
    } finally {
      await load.stop();
    }
    good.push(fresh.key);
    const fig = { ...figures(load), readyAfterHealMs: readyAfterMs, unseenKeyOkAfterHealMs: firstFreshOkMs, during: Object.fromEntries(Object.entries(during).map(([k, v]) => [k, { status: v.status, ms: v.ms, code: code(v), retryAfter: v.retryAfter }])) };
    t.diagnostic(JSON.stringify(fig));
    const msg = JSON.stringify(fig);
    invariants(load, load.window('fault', 'healed', DB_TIMEOUT_MS + MARGIN_MS));
    // Recovered: once the uncached key is checked again, the load's answers are 200/401 again, and there were some.
    const recovered = load.window('recovered', 'end');
    const late = load.where((s) => s.at >= recovered.from && s.at <= recovered.to);
    assert.ok(late.length > 0 && late.every((s) => s.status === 200 || s.status === 401), `answers after the recovery: ${msg}`);
    // The management API: a read and a write are refused with the documented 503, and the write left nothing.
    assertUnavailable(during.readA!, 'a management read during the fault');
    assertUnavailable(during.write!, 'a management write during the fault');
    const list = await fetch(a.url + '/gateway/v1/me/keys?limit=500', { headers: { authorization: basic(adminKey) } });
    const all = await list.text();
    assert.equal(list.status, 200, all.slice(0, 300));
    assert.ok(!all.includes(marker), 'the write refused during the fault left nothing behind');
    // A key nothing had cached cannot be checked: 503, never 401 (and never 200).
    assertUnavailable(during.verifyFreshA!, 'an uncached key on A');
    assertUnavailable(during.verifyFreshB!, 'an uncached key on B');
    // The login page answers a page, not a 500.
    assert.notEqual(during.login!.status, 500, msg);
    assert.match(during.login!.contentType, /text\/html/, msg);
    // Not ready while the database is unreachable.
    assert.equal(during.readyA!.status, 503, msg);
    assert.equal(during.readyB!.status, 503, msg);
    for (const p of Object.values(during)) assert.ok(p.ms < DB_TIMEOUT_MS + MARGIN_MS, `answered within the timeout: ${msg}`);
    return fig;
  }

  test('PostgreSQL down (crashed, 4 s, started again): cached keys keep working, the rest is 503 unavailable; back by itself', async (t) => {
    await pgRow(t, () => pg.crashInBackground(), () => pg.startServer());
  });

  test('PostgreSQL restarted (crashed, started again as soon as the probes are answered): back by itself within about 2 s', async (t) => {
    const fig = await pgRow(t, () => pg.crashInBackground(), () => pg.startServer(), 0);
    // Both instances ready, and a key nothing had cached checked on both, within about 2 s of the database's return.
    assert.ok(fig.readyAfterHealMs < 2000 + MARGIN_MS, JSON.stringify(fig));
    assert.ok(fig.unseenKeyOkAfterHealMs < 2000 + MARGIN_MS, JSON.stringify(fig));
  });

  test('PostgreSQL slow (each chunk held 1.5 s, longer than the database timeout): 503 unavailable after the timeout; back when it speeds up', async (t) => {
    await pgRow(t, () => pgRelay.set('delay', 1500), () => pgRelay.set('pass'));
  });

  test('PostgreSQL partitioned (packets dropped both ways): 503 unavailable within the timeout; heals by itself', async (t) => {
    await pgRow(t, () => pgRelay.set('blackhole'), () => pgRelay.heal());
  });

  /**
   * A Redis row: the load runs on both instances; during the fault two keys are revoked through A and the
   * load asserts B refuses them within the bound; the management API answers; /readyz says degraded.
   */
  async function redisRow(t: TestContext, fault: () => Promise<void> | void, heal: () => Promise<void> | void, faultMs = 4000, waitDegraded = true) {
    const load = newLoad();
    const toRevoke = spare.splice(0, 2);
    let degradedAfterMs = -1;
    let okAfterHealMs: number;
    const revocations: Array<{ label: string; answeredInMs: number; at: number }> = [];
    let mgmt: Record<string, Answer>;
    try {
      await sleep(1000);
      load.mark('fault');
      await fault();
      // A restart is revoked into at once: the revocations fall in the gap, before anyone noticed it.
      if (waitDegraded) degradedAfterMs = await untilReady('degraded during the Redis fault', (r) => r.status === 200 && r.body.status === 'degraded' && r.body.checks?.invalidation_channel === 'down', 5000);
      for (const k of toRevoke) {
        load.revoking(k.key);
        const t0 = Date.now();
        const at = await revokeKey(a.url, adminKey, k.id);
        load.revoke(k.key, at);
        revocations.push({ label: k.id, answeredInMs: at - t0, at });
      }
      const auth = { authorization: basic(adminKey), accept: 'application/json' };
      const [read, write, login] = await Promise.all([
        ask(b.url + '/gateway/v1/me/keys', { headers: auth }),
        ask(b.url + '/gateway/v1/me/keys', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: `redis-fault-${randomBytes(2).toString('hex')}` }) }),
        ask(`${b.url}/login?org=${org}`, { headers: { accept: 'text/html' } }),
      ]);
      mgmt = { read, write, login };
      if (write.status === 201) for (const g of gws()) g.recordKeys([(JSON.parse(write.text) as { key: string }).key]);
      // Long enough after the last revocation for the load to show B refusing it.
      await sleep(Math.max(waitDegraded ? REVOCATION_BOUND_MS + 1000 : 0, faultMs - (Date.now() - load.window('fault', null).from)));
      load.mark('heal');
      await heal();
      load.mark('healed');
      okAfterHealMs = await untilReady('ok once Redis is back', (r) => r.status === 200 && r.body.status === 'ok' && r.body.checks?.invalidation_channel === 'ok', 20_000);
      // Long enough after the last revocation for the load to show B refusing it.
      await sleep(Math.max(500, REVOCATION_BOUND_MS + 1000 - (Date.now() - Math.max(...revocations.map((r) => r.at)))));
      load.mark('end');
    } finally {
      await load.stop();
    }
    // How long B let each key revoked during the fault through: the latest sent-after-revocation 200 on B.
    const lagOnB = revocations.map((r) => Math.max(0, ...load.where((s) => s.instance === 'b' && s.revokedAt === r.at && s.status === 200).map((s) => s.at - r.at)));
    const seenOnB = revocations.map((r) => load.where((s) => s.instance === 'b' && s.revokedAt === r.at && s.at > r.at + REVOCATION_BOUND_MS).length);
    const fig = {
      ...figures(load),
      degradedAfterMs,
      okAfterHealMs,
      revocationAnsweredInMs: revocations.map((r) => r.answeredInMs),
      revokedStillAcceptedOnBForMs: lagOnB,
      revokedAskedOnBPastBound: seenOnB,
      management: Object.fromEntries(Object.entries(mgmt).map(([k, v]) => [k, { status: v.status, ms: v.ms, code: code(v) }])),
    };
    t.diagnostic(JSON.stringify(fig));
    const msg = JSON.stringify(fig);
    // No revoked key accepted past the bound (in invariants), and B was indeed asked for each past it.
    assert.ok(seenOnB.every((n) => n > 0), `the load asked B for each revoked key past the bound: ${msg}`);
    // API keys do not need Redis: no 5xx at all, fault or not.
    invariants(load, { from: 0, to: 0 });
    // The management API answers (API keys do not need Redis); the login page is a page.
    assert.equal(mgmt.read!.status, 200, msg);
    assert.equal(mgmt.write!.status, 201, msg);
    assert.ok(mgmt.login!.status < 500, msg);
    for (const r of revocations) assert.ok(r.answeredInMs < REDIS_TIMEOUT_MS + MARGIN_MS, `a revocation answered promptly: ${msg}`);
  }

  test('Redis down (killed, started again later): B refuses keys revoked through A within 1 s (the poll); /readyz degraded, then ok', async (t) => {
    await redisRow(t, () => redis.kill(), () => redis.startServer());
  });

  test('Redis restarted (killed, keys revoked at once, started again): revocations made in the gap still reach B within 1 s; back to ok by itself', async (t) => {
    await redisRow(t, () => redis.kill(), () => redis.startServer(), 0, false);
  });

  test('Redis slow (each chunk held 1 s, longer than the Redis timeout): as down', async (t) => {
    await redisRow(t, () => redisRelay.set('delay', 1000), () => redisRelay.set('pass'));
  });

  test('Redis partitioned (packets dropped both ways): as down; heals by itself', async (t) => {
    await redisRow(t, () => redisRelay.set('blackhole'), () => redisRelay.heal());
  });
});
