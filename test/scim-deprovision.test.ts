/**
 * Issue 16, end to end: offboarding through SCIM ends a person's access everywhere within a second.
 *
 * Two trackgate instances (A and B) on one PostgreSQL and one Redis, in front of a tracking API that
 * records what it receives. Twenty people, each with two API keys and a browser session, all used on
 * both instances (so every instance has them cached: a 300 s key cache, only an invalidation makes an
 * instance forget them). Each is deprovisioned through SCIM on A, in the forms Okta and Entra ID send;
 * per person we measure how long until both keys fail on both instances and the session fails on both,
 * while their traffic keeps hitting the proxy of both instances. Then reactivation: the account signs in
 * again, the old keys and sessions stay dead, new keys work everywhere. Last, the same bound with the
 * Redis channel gone (a Redis of the test's own, killed): the database's invalidation poll carries it.
 *
 * SQLite is one instance on one file (no Redis fan-out to prove), so this file runs on PostgreSQL only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { canRunPrivateRedis, PrivateRedis } from './support/faults/redis.ts';
import { FaultProxy } from './support/faults/tcp-proxy.ts';
import { ACTIVE_FORMS, provisionGroup, provisionUser, scimIdOf, setActive, userRow } from './support/scim-people.ts';
import type { ActiveForm } from './support/scim-people.ts';
import { ENTRA_AGENT, PATCH_SCHEMA, scimClientFor } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { loginLinkPath, signIn, WebBrowser } from './support/web.ts';

const PG = dialects().includes('postgres');
const REDIS_URL = process.env.TRACKGATE_TEST_REDIS_URL;
/** The issue's bound: every key and every session of the person stops working on every instance within 1 s. */
const BOUND_MS = 1000;
/** How often each credential is tried while waiting for it to fail (the brief: ~20 ms). */
const POLL_MS = 20;
const PEOPLE = 20;

if (PG) test('SCIM deprovisioning on SQLite', { skip: 'SKIPPED (by design): the end-to-end bound is about several instances sharing PostgreSQL and Redis; SQLite serves one instance' }, () => {});

interface Person {
  i: number;
  email: string;
  username: string;
  id: string;
  keys: string[];
  /** The browser session's cookie header (trackgate.sid=…), sent to both instances. */
  cookie: string;
  browser: WebBrowser;
}

interface Timing {
  person: string;
  form: ActiveForm;
  /** Per credential and instance: ms from the SCIM answer to the first failing request's sending (negative: failed before the answer came). */
  checks: Record<string, number>;
  worst: number;
}

/** /auth/verify on an instance (the hot paths' isolate, the one that caches keys). */
async function verifyStatus(app: TestApp, key: string): Promise<number> {
  const r = await fetch(app.url + '/auth/verify', { headers: { authorization: basic(key) } });
  await r.arrayBuffer();
  return r.status;
}

/** GET /gateway/v1/me with a session cookie only: 200 while the session stands. */
async function sessionStatus(app: TestApp, cookie: string): Promise<{ status: number; username?: string }> {
  const r = await fetch(app.url + '/gateway/v1/me', { headers: { cookie, accept: 'application/json' } });
  const text = await r.text();
  return { status: r.status, ...(r.status === 200 ? { username: (JSON.parse(text) as { username: string }).username } : {}) };
}

/** A proxied request to the tracking API through an instance, tagged so the upstream's record names it. */
async function proxied(app: TestApp, key: string, path: string): Promise<number> {
  const r = await fetch(app.url + path, { headers: { authorization: basic(key), 'user-agent': 'W&B Internal Client 0.19.8' } });
  await r.arrayBuffer();
  return r.status;
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

async function channelOk(app: TestApp): Promise<boolean> {
  const r = await fetch(app.url + '/readyz');
  return ((await r.json()) as { checks: Record<string, string> }).checks.invalidation_channel === 'ok';
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * A deployment of two instances on one PostgreSQL database and the given Redis, an upstream that
 * records, an organization with a SCIM token (on A) and helpers to make people.
 */
class Deployment {
  a!: TestApp;
  b!: TestApp;
  upstream!: StubUpstream;
  org = '';
  adminKey = '';
  scim!: ScimClient;

  async start(redisUrl: string): Promise<void> {
    this.upstream = await startUpstream();
    // A long key cache: only an invalidation can make an instance forget a key within the test.
    const shared = { redisUrl, redisKeyPrefix: `tgscim-${randomBytes(4).toString('hex')}:`, upstreamUrl: this.upstream.url, keyCacheTtlSeconds: 300, maxKeysPerPrincipal: 1000 };
    this.a = await startApp('postgres', shared);
    this.b = await startApp('postgres', shared, { shareWith: this.a });
    ({ org: this.org, adminKey: this.adminKey } = await this.a.bootstrap());
    this.b.keys.add(this.adminKey);
    this.scim = await scimClientFor(this.a, this.org, this.adminKey, { name: 'okta' });
    this.b.keys.add(this.scim.token);
    await eventually('A hears the invalidation channel', () => channelOk(this.a), (x) => x, 10_000);
    await eventually('B hears the invalidation channel', () => channelOk(this.b), (x) => x, 10_000);
  }

  async stop(): Promise<void> {
    await this.b?.close();
    await this.a?.close();
    await this.upstream?.close();
  }

  /** Records a secret in both instances' key lists (their logs are checked for it). */
  remember(secret: string): void {
    this.a.keys.add(secret);
    this.b.keys.add(secret);
  }

  /** A new personal key made with the person's browser session (cookie + X-CSRF-Token), as the settings page does. */
  async keyBySession(browser: WebBrowser, name: string): Promise<string> {
    const s = await browser.request('GET', '/gateway/v1/session', { headers: { accept: 'application/json' } });
    assert.equal(s.status, 200, s.text);
    const csrf = (JSON.parse(s.text) as { csrf_token: string }).csrf_token;
    const r = await browser.request('POST', '/gateway/v1/me/keys', { json: { name }, headers: { accept: 'application/json', 'x-csrf-token': csrf } });
    assert.equal(r.status, 201, r.text);
    const key = (JSON.parse(r.text) as { key: string }).key;
    this.remember(key);
    return key;
  }

  /**
   * Person i: even ones provisioned through SCIM (POST /Users, as Okta does), odd ones made by the CLI
   * before SCIM was connected (found by Okta's import filter: SCIM manages every user of the organization).
   * Each signs in with a login link and holds two API keys.
   */
  async person(i: number, tag: string): Promise<Person> {
    const username = `p${i}-${tag}`;
    const email = `${username}@${this.org}.example`;
    const keys: string[] = [];
    let id: string;
    if (i % 2 === 0) {
      id = (await provisionUser(this.scim, email)).id;
    } else {
      const made = await this.a.createUser({ org: this.org, username, email });
      this.remember(made.key);
      keys.push(made.key);
      id = await scimIdOf(this.scim, email);
    }
    const row = await userRow(this.a, id);
    assert.ok(row, `the SCIM id ${id} is a users row`);
    const browser = await signIn(this.a, email);
    while (keys.length < 2) keys.push(await this.keyBySession(browser, `laptop-${keys.length}`));
    const sid = browser.jar.get('trackgate.sid');
    assert.ok(sid, 'a session cookie');
    return { i, email, username: row.username, id, keys, cookie: `trackgate.sid=${sid}`, browser };
  }

  /** Every credential of the person works on both instances (and is now cached there), and the proxy says who they are. */
  async warm(p: Person): Promise<void> {
    for (const app of [this.a, this.b]) {
      for (const [k, key] of p.keys.entries()) {
        assert.equal(await verifyStatus(app, key), 200, `${p.username} key ${k} on ${app === this.a ? 'A' : 'B'}`);
        assert.equal(await proxied(app, key, `/api/warm/${p.username}/${k}`), 200);
      }
      const s = await sessionStatus(app, p.cookie);
      assert.equal(s.status, 200, `${p.username}'s session on ${app === this.a ? 'A' : 'B'}`);
      assert.equal(s.username, p.username);
    }
    const seen = this.upstream.requests.filter((r) => r.url.startsWith(`/api/warm/${p.username}/`));
    assert.equal(seen.length, 4);
    assert.ok(seen.every((r) => r.headers['x-trackgate-user'] === p.username));
  }

  /**
   * Deprovisions the person through SCIM on A in `form` while their traffic goes on through both
   * instances' proxies; measures when each credential fails on each instance, and checks what reached
   * the tracking API.
   */
  async deprovision(p: Person, form: ActiveForm): Promise<Timing & { sentAfterAnswer: number; lastArrivalMs: number; scimMs: number }> {
    const instances = [['A', this.a], ['B', this.b]] as const;
    // Their jobs keep running: proxied requests with each key on each instance, one after another.
    type Sent = { seq: number; instance: string; key: number; sentAt: number; status: number };
    const sent: Sent[] = [];
    let traffic = true;
    let seq = 0;
    const load = (async () => {
      while (traffic) {
        for (const [name, app] of instances) {
          for (const [k, key] of p.keys.entries()) {
            const n = seq++;
            const sentAt = Date.now();
            const status = await proxied(app, key, `/api/runs/${p.username}/${n}`);
            sent.push({ seq: n, instance: name, key: k, sentAt, status });
          }
        }
        await sleep(5);
      }
    })();
    await sleep(60);

    const t0 = Date.now();
    const r = await setActive(this.scim, p.id, false, form);
    const answered = Date.now();
    const scimMs = answered - t0;
    assert.equal(r.status, 200, `${form} for ${p.username}: ${r.text}`);
    assert.equal(r.body.active, false, r.text);

    // Each credential on each instance, tried every POLL_MS until it fails; the time is when the first failing request was sent.
    const checks: Record<string, number> = {};
    /** When the failing answer of each check arrived (epoch ms): a proxied request sent after it must be refused. */
    const failedAt: Record<string, number> = {};
    const pending = new Map<string, () => Promise<boolean>>();
    for (const [name, app] of instances) {
      for (const [k, key] of p.keys.entries()) pending.set(`key${k}@${name}`, async () => (await verifyStatus(app, key)) === 401);
      pending.set(`session@${name}`, async () => (await sessionStatus(app, p.cookie)).status === 401);
    }
    while (pending.size && Date.now() - answered < BOUND_MS * 3) {
      const round = Date.now();
      await Promise.all(
        [...pending].map(async ([what, failed]) => {
          const at = Date.now();
          if (await failed()) {
            checks[what] = at - answered;
            failedAt[what] = Date.now();
            pending.delete(what);
          }
        }),
      );
      await sleep(Math.max(0, POLL_MS - (Date.now() - round)));
    }
    for (const what of pending.keys()) checks[what] = Infinity;
    await sleep(100);
    traffic = false;
    await load;

    // Once a credential failed on an instance it stays failed: no later request with it got through.
    for (const s of sent) {
      const cutoff = failedAt[`key${s.key}@${s.instance}`] ?? Infinity;
      if (s.sentAt > cutoff) assert.equal(s.status, 401, `${p.username} key ${s.key} on ${s.instance} let through after it failed (request ${s.seq})`);
    }
    // What reached the tracking API: nothing sent after their cutoff, nothing arriving past the bound.
    const theirs = this.upstream.requests.filter((u) => u.url.startsWith(`/api/runs/${p.username}/`));
    assert.ok(theirs.every((u) => u.headers['x-trackgate-user'] === p.username));
    const bySeq = new Map(sent.map((s) => [s.seq, s]));
    let lastArrivalMs = -Infinity;
    for (const u of theirs) {
      const s = bySeq.get(Number(u.url.split('/').pop()))!;
      assert.ok(s, u.url);
      assert.equal(s.status, 200, `the upstream saw request ${s.seq} that the proxy answered ${s.status}`);
      lastArrivalMs = Math.max(lastArrivalMs, u.endAt - answered);
    }
    assert.ok(lastArrivalMs <= BOUND_MS, `the tracking API saw ${p.username} ${lastArrivalMs} ms after the deprovisioning answered`);
    assert.ok(sent.some((s) => s.sentAt > answered && s.status === 401), 'traffic went on after the deprovisioning and was refused');
    const sentAfterAnswer = sent.filter((s) => s.sentAt >= answered && s.status === 200).length;
    const worst = Math.max(...Object.values(checks));
    return { person: p.username, form, checks, worst, sentAfterAnswer, lastArrivalMs, scimMs };
  }
}

describe('SCIM deprovisioning end to end: two instances on PostgreSQL and Redis', { skip: !PG ? 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set (this runs on PostgreSQL only)' : !REDIS_URL ? 'SKIPPED: TRACKGATE_TEST_REDIS_URL is not set (two instances need Redis to share invalidations and sessions)' : false, timeout: 300_000 }, () => {
  const d = new Deployment();
  const people: Person[] = [];
  const tag = randomBytes(2).toString('hex');

  before(async () => {
    await d.start(REDIS_URL!);
    for (let i = 0; i < PEOPLE; i++) people.push(await d.person(i, tag));
    for (const p of people) await d.warm(p);
  });
  after(() => d.stop());

  test(`${PEOPLE} people deactivated through SCIM on A (Okta and Entra forms): keys and sessions fail on A and B within ${BOUND_MS} ms; the tracking API stops seeing them`, async () => {
    const timings: Array<Awaited<ReturnType<Deployment['deprovision']>>> = [];
    for (const p of people) timings.push(await d.deprovision(p, ACTIVE_FORMS[p.i % ACTIVE_FORMS.length]!));

    const worst = timings.map((t) => t.worst).sort((x, y) => x - y);
    const perCheck = timings.flatMap((t) => Object.values(t.checks)).sort((x, y) => x - y);
    console.log(
      `# deprovisioning, ${timings.length} people, ms from the SCIM answer until every key and the session fail on both instances: ` +
        `max ${worst.at(-1)}, p50 ${percentile(worst, 50)}, p90 ${percentile(worst, 90)}; per credential and instance: max ${perCheck.at(-1)}, p50 ${percentile(perCheck, 50)}; ` +
        `proxied requests sent after the answer that still reached the tracking API: ${timings.reduce((n, t) => n + t.sentAfterAnswer, 0)}; last arrival after the answer: max ${Math.max(...timings.map((t) => t.lastArrivalMs))} ms; ` +
        `SCIM request itself: max ${Math.max(...timings.map((t) => t.scimMs))} ms`,
    );
    for (const t of timings) assert.ok(t.worst <= BOUND_MS, `${t.person} (${t.form}): ${JSON.stringify(t.checks)}`);

    // Nothing of theirs is deleted: the users row stays, deactivated; each deactivation is audited with the IdP as actor and its revoked keys.
    for (const p of people) assert.equal((await userRow(d.a, p.id))?.status, 'deactivated');
    const audit = await d.a.request('GET', `/gateway/v1/orgs/${d.org}/audit?action=user.deactivate&limit=100`, { key: d.adminKey });
    assert.equal(audit.status, 200, audit.text);
    for (const p of people) {
      const e = audit.body.events.find((x: any) => x.target.id === p.id);
      assert.ok(e, `user.deactivate audited for ${p.username}`);
      assert.equal(e.actor.type, 'scim');
      assert.equal(e.actor.name, 'scim:okta');
      assert.equal(e.details.via, 'scim');
      assert.equal(e.details.keys_revoked, 2, JSON.stringify(e));
    }
    // SCIM still lists them, inactive (Okta's import must see who it deactivated).
    const listed = await d.scim.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${people[0]!.email}"`)}`);
    assert.equal(listed.body.totalResults, 1, listed.text);
    assert.equal(listed.body.Resources[0].active, false);
  });

  test('a second deactivation changes nothing and answers 200; a deactivated person cannot sign in with a login link', async () => {
    const p = people[0]!;
    const r = await setActive(d.scim, p.id, false, 'entra-patch');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.active, false);
    // The link is refused when issued (the CLI says so), or else when opened.
    const path = await loginLinkPath(d.a, p.email).catch((err: Error) => {
      assert.match(err.message, /deactivated/);
      return null;
    });
    if (path !== null) {
      const page = await new WebBrowser(d.a).get(path);
      assert.equal(page.status, 403, page.text.slice(0, 300));
      assert.match(page.text, /<code>user_deactivated<\/code>/);
    }
  });

  test('reactivated through SCIM (each form): signs in again; the old keys and the old session stay dead on both instances; a new key works on both', async () => {
    for (const [n, form] of ACTIVE_FORMS.entries()) {
      const p = people[n]!;
      const r = await setActive(d.scim, p.id, true, form);
      assert.equal(r.status, 200, `${form}: ${r.text}`);
      assert.equal(r.body.active, true, r.text);
      assert.equal((await userRow(d.a, p.id))?.status, 'active');
      // Past the invalidation poll: whatever an instance could relearn, it has.
      await sleep(700);
      for (const app of [d.a, d.b]) {
        for (const key of p.keys) assert.equal(await verifyStatus(app, key), 401, `${p.username}'s revoked key stays revoked after reactivation`);
        assert.equal((await sessionStatus(app, p.cookie)).status, 401, `${p.username}'s old session was ended, not just refused`);
        assert.equal(await proxied(app, p.keys[0]!, `/api/after/${p.username}`), 401);
      }
      assert.equal(d.upstream.requests.filter((u) => u.url === `/api/after/${p.username}`).length, 0);

      const browser = await signIn(d.a, p.email);
      const key = await d.keyBySession(browser, 'after-return');
      const cookie = `trackgate.sid=${browser.jar.get('trackgate.sid')}`;
      for (const app of [d.a, d.b]) {
        assert.equal(await verifyStatus(app, key), 200);
        assert.equal((await sessionStatus(app, cookie)).status, 200);
        assert.equal(await proxied(app, key, `/api/back/${p.username}`), 200);
      }
      const seen = d.upstream.requests.filter((u) => u.url === `/api/back/${p.username}`);
      assert.equal(seen.length, 2);
      assert.ok(seen.every((u) => u.headers['x-trackgate-user'] === p.username));
    }
    const audit = await d.a.request('GET', `/gateway/v1/orgs/${d.org}/audit?action=user.reactivate&limit=100`, { key: d.adminKey });
    assert.equal(audit.body.events.filter((e: any) => e.actor.type === 'scim').length, ACTIVE_FORMS.length, audit.text);
  });

  test('group membership through SCIM on A reaches B\'s next requests within the bound (team claims on /auth/verify and upstream)', async () => {
    const p = await d.person(100, tag);
    await d.warm(p);
    const group = await provisionGroup(d.scim, `E2E Crew ${tag}`);
    const teams = async (key: string) => {
      const r = await fetch(d.b.url + '/auth/verify', { headers: { authorization: basic(key) } });
      await r.arrayBuffer();
      return r.headers.get('x-trackgate-teams') ?? '';
    };
    // The team's name (a slug of the display name) is what the claims carry.
    const team = (await sql<{ name: string }>`select name from teams where id = ${group.id}`.execute(d.a.gw.core.database.db)).rows[0]!.name;
    assert.equal(team, `e2e-crew-${tag}`);
    assert.ok(!(await teams(p.keys[0]!)).split(',').includes(team));
    const add = await d.scim.request('PATCH', `/Groups/${group.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Add', path: 'members', value: [{ value: p.id }] }] }, { 'user-agent': ENTRA_AGENT });
    assert.equal(add.status, 204, add.text);
    const added = Date.now();
    await eventually('B sees the new team', () => teams(p.keys[0]!), (t) => t.split(',').includes(team), BOUND_MS);
    const addMs = Date.now() - added;
    assert.equal(await proxied(d.b, p.keys[1]!, `/api/teams/${p.username}`), 200);
    assert.ok(String(d.upstream.requests.find((u) => u.url === `/api/teams/${p.username}`)?.headers['x-trackgate-teams']).split(',').includes(team));
    const remove = await d.scim.request('PATCH', `/Groups/${group.id}`, { schemas: [PATCH_SCHEMA], Operations: [{ op: 'remove', path: `members[value eq "${p.id}"]` }] });
    assert.equal(remove.status, 204, remove.text);
    const removed = Date.now();
    await eventually('B drops the team', () => teams(p.keys[0]!), (t) => !t.split(',').includes(team), BOUND_MS);
    console.log(`# group membership via SCIM on A seen on B after ${addMs} ms (add), ${Date.now() - removed} ms (remove)`);
  });
});

describe('SCIM deprovisioning with the Redis channel gone: the invalidation poll keeps the bound', { skip: !PG ? 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set (this runs on PostgreSQL only)' : !canRunPrivateRedis() ? 'SKIPPED: no redis-server on this machine to run a Redis of the test\'s own' : false, timeout: 180_000 }, () => {
  const d = new Deployment();
  let redis: PrivateRedis;
  const people: Person[] = [];
  const tag = randomBytes(2).toString('hex');

  before(async () => {
    redis = await PrivateRedis.start();
    await d.start(redis.url);
    // Sessions live in Redis here: they are made (and checked) before it goes, so people get keys only.
    for (let i = 0; i < 4; i++) people.push(await d.person(i, tag));
    for (const p of people) await d.warm(p);
  });
  after(async () => {
    await d.stop();
    await redis?.kill();
  });

  test(`Redis killed: people deactivated through SCIM on A lose their keys on A and B within ${BOUND_MS} ms`, async () => {
    await redis.kill();
    await eventually('B notices the channel is down', () => channelOk(d.b), (x) => !x, 10_000);
    const worst: number[] = [];
    const statuses: number[] = [];
    for (const p of people) {
      const r = await setActive(d.scim, p.id, false, ACTIVE_FORMS[p.i % ACTIVE_FORMS.length]!);
      const answered = Date.now();
      // With Redis down the sessions (kept in Redis) cannot be ended; the deactivation and the keys must go all the same.
      statuses.push(r.status);
      assert.ok(r.status === 200 || r.status === 503, `${p.username}: ${r.status} ${r.text}`);
      assert.equal((await userRow(d.a, p.id))?.status, 'deactivated', `${p.username} deactivated (SCIM answered ${r.status})`);
      const times: number[] = [];
      for (const app of [d.a, d.b]) {
        for (const key of p.keys) {
          let ms = Infinity;
          while (Date.now() - answered < BOUND_MS * 3) {
            const at = Date.now();
            if ((await verifyStatus(app, key)) === 401) {
              ms = at - answered;
              break;
            }
            await sleep(POLL_MS);
          }
          times.push(ms);
        }
      }
      worst.push(Math.max(...times));
    }
    console.log(`# deprovisioning with Redis down: SCIM answered ${statuses.join(', ')}; worst per person, ms from the answer until both keys fail on A and B: ${worst.join(', ')}`);
    assert.ok(worst.every((ms) => ms <= BOUND_MS), worst.join(', '));
  });
});

describe('SCIM deprovisioning while Redis is unreachable (its data kept): the IdP\'s retry ends the sessions for good', { skip: !PG ? 'SKIPPED: TRACKGATE_TEST_DATABASE_URL is not set (this runs on PostgreSQL only)' : !canRunPrivateRedis() ? 'SKIPPED: no redis-server on this machine to run a Redis of the test\'s own' : false, timeout: 180_000 }, () => {
  const d = new Deployment();
  let redis: PrivateRedis;
  let relay: FaultProxy;
  let p: Person;

  before(async () => {
    redis = await PrivateRedis.start();
    // The instances reach Redis through a relay: refusing connections there is a network fault, Redis keeps its data (the sessions).
    relay = await FaultProxy.start({ port: redis.port });
    await d.start(`redis://127.0.0.1:${relay.port}`);
    p = await d.person(0, randomBytes(2).toString('hex'));
    await d.warm(p);
  });
  after(async () => {
    await d.stop();
    await relay?.close();
    await redis?.kill();
  });

  // A deactivation answered 503 (the sessions could not be ended) and retried must end them then; reactivation must not bring them back.
  test('deactivated while Redis is unreachable: keys fail within the bound whatever SCIM answers; after the IdP retries and later reactivates, the old session stays dead', async () => {
    relay.set('refuse');
    const r = await setActive(d.scim, p.id, false, 'okta-patch');
    const answered = Date.now();
    // The sessions (in Redis) cannot be ended now: a 503 tells the IdP to try again; the deactivation and the keys are done all the same.
    assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.text}`);
    assert.equal((await userRow(d.a, p.id))?.status, 'deactivated');
    for (const app of [d.a, d.b]) {
      for (const key of p.keys) {
        let failed = false;
        while (!failed && Date.now() - answered < BOUND_MS) failed = (await verifyStatus(app, key)) === 401;
        assert.ok(failed, `${p.username}'s key still works on ${app === d.a ? 'A' : 'B'} ${BOUND_MS} ms after the deactivation`);
      }
    }
    relay.set('pass');
    await eventually('A hears Redis again', () => channelOk(d.a), (x) => x, 15_000);
    // The IdP retries the deactivation it was refused; then, one day, the person comes back.
    const retry = await setActive(d.scim, p.id, false, 'okta-patch');
    assert.equal(retry.status, 200, retry.text);
    for (const app of [d.a, d.b]) assert.equal((await sessionStatus(app, p.cookie)).status, 401);
    const back = await setActive(d.scim, p.id, true, 'okta-patch');
    assert.equal(back.status, 200, back.text);
    for (const app of [d.a, d.b]) {
      assert.equal((await sessionStatus(app, p.cookie)).status, 401, `the session from before the deprovisioning works again on ${app === d.a ? 'A' : 'B'} after reactivation (SCIM first answered ${r.status})`);
      for (const key of p.keys) assert.equal(await verifyStatus(app, key), 401);
    }
  });
});
