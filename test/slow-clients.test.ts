import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { basic, dialects, sleep, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

/**
 * Slow clients (slowloris, slow POST) must not starve the management plane.
 * Before the fix, ~65 connections that sent a management request's head and
 * then a byte every two seconds held every connection of the management
 * worker's pool (64) for up to 300 s, and /gateway/v1/*, /login and
 * /login/callback stopped answering. Now the main thread holds a request
 * until its body has arrived (within managementBodyTimeoutMs) and only then
 * hands it to the worker, /gateway/v1 requests are authenticated before their
 * body is read, and every request's head must arrive within
 * requestHeadersTimeoutMs.
 */

const HEADERS_TIMEOUT_MS = 2000;
const BODY_TIMEOUT_MS = 3000;

interface Slow {
  /** The status of the answer (null when the socket closed without one) and when the socket closed. */
  closed: Promise<{ status: number | null; ms: number }>;
  destroy(): void;
}

/** A client that writes `head` at once, then `drip` one byte every two seconds until the server closes the connection. */
function slowClient(url: string, head: string, drip: string): Slow {
  const { port } = new URL(url);
  const started = Date.now();
  const s = net.connect(Number(port), '127.0.0.1');
  let timer: NodeJS.Timeout | null = null;
  let out = '';
  s.setEncoding('latin1');
  s.on('connect', () => {
    s.write(head);
    let i = 0;
    timer = setInterval(() => {
      if (s.writable) s.write(drip[i++ % drip.length]!);
    }, 2000);
  });
  s.on('data', (d: string) => (out += d));
  s.on('error', () => {});
  const closed = new Promise<{ status: number | null; ms: number }>((resolve) => {
    s.on('close', () => {
      if (timer) clearInterval(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(out);
      resolve({ status: m ? Number(m[1]) : null, ms: Date.now() - started });
    });
  });
  return {
    closed,
    destroy: () => {
      if (timer) clearInterval(timer);
      s.destroy();
    },
  };
}

/** A request's status and how long it took (-1 when it did not answer within 5 s: the management plane is starved). */
async function timed(f: (signal: AbortSignal) => Promise<Response>): Promise<{ status: number; ms: number }> {
  const t = Date.now();
  try {
    const r = await f(AbortSignal.timeout(5000));
    await r.arrayBuffer();
    return { status: r.status, ms: Date.now() - t };
  } catch {
    return { status: -1, ms: Date.now() - t };
  }
}

for (const dialect of dialects()) {
  describe(`slow clients cannot starve the management plane (${dialect})`, { timeout: 60_000 }, () => {
    let app: TestApp;
    let adminKey: string;

    before(async () => {
      app = await startApp(dialect, { requestHeadersTimeoutMs: HEADERS_TIMEOUT_MS, managementBodyTimeoutMs: BODY_TIMEOUT_MS });
      ({ adminKey } = await app.bootstrap());
    });
    after(() => app.close());

    test('130 slow connections: /gateway/v1/me, /login and /auth/verify answer at once; the slow ones get 408 within the bound', async (t) => {
      const auth = `Authorization: ${basic(adminKey)}\r\n`;
      const slowBody = (path: string, withAuth: boolean, type = 'application/json') =>
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\n${withAuth ? auth : ''}Content-Type: ${type}\r\nContent-Length: 200\r\n\r\n`;
      const groups = {
        // An authenticated management request whose body trickles in.
        body: Array.from({ length: 50 }, () => slowClient(app.url, slowBody('/gateway/v1/me/keys', true), '{')),
        // The IdP's form_post to /login/callback cannot be authenticated first: its body is bounded in time only.
        callback: Array.from({ length: 30 }, () => slowClient(app.url, slowBody('/login/callback', false, 'application/x-www-form-urlencoded'), 'a')),
        // Without credentials a management body is never waited for.
        anonymous: Array.from({ length: 20 }, () => slowClient(app.url, slowBody('/gateway/v1/me/keys', false), '{')),
        // A head that never ends (slowloris).
        head: Array.from({ length: 30 }, () => slowClient(app.url, `GET /gateway/v1/me HTTP/1.1\r\nHost: localhost\r\n${auth}X-Slow: `, 'a')),
      };
      const all = Object.values(groups).flat();
      const slowest: Record<string, number> = {};
      try {
        await sleep(500);
        // While every slow connection is open, the management plane answers others at once (twice: before and after the slow ones' drips).
        for (let round = 0; round < 2; round++) {
          const me = await timed((signal) => fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(adminKey) }, signal }));
          assert.equal(me.status, 200);
          assert.ok(me.ms < 1500, `GET /gateway/v1/me took ${me.ms} ms while slow clients were connected`);
          const created = await timed((signal) =>
            fetch(`${app.url}/gateway/v1/me/keys`, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: JSON.stringify({ name: `while-slow-${round}` }), signal }),
          );
          assert.equal(created.status, 201);
          assert.ok(created.ms < 1500, `POST /gateway/v1/me/keys took ${created.ms} ms`);
          const login = await timed((signal) => fetch(`${app.url}/login`, { redirect: 'manual', signal }));
          assert.ok(login.status < 500, `GET /login answered ${login.status}`);
          assert.ok(login.ms < 1500, `GET /login took ${login.ms} ms while slow clients were connected`);
          const verify = await timed((signal) => fetch(`${app.url}/auth/verify`, { headers: { authorization: basic(adminKey) }, signal }));
          assert.equal(verify.status, 200);
          for (const [k, v] of Object.entries({ me: me.ms, create: created.ms, login: login.ms, verify: verify.ms })) slowest[k] = Math.max(slowest[k] ?? 0, v);
          await sleep(1500);
        }

        const bound = (ms: number) => ms + 2500; // the deadline, the server's once-a-second check and this machine's slack
        const outcome = async (list: Slow[]) => Promise.all(list.map((s) => Promise.race([s.closed, sleep(20_000).then(() => ({ status: -1, ms: 20_000 }))])));
        const [body, callback, anonymous, head] = await Promise.all([outcome(groups.body), outcome(groups.callback), outcome(groups.anonymous), outcome(groups.head)]);
        for (const r of anonymous) {
          assert.equal(r.status, 401, 'an anonymous management body is refused before it is read');
          assert.ok(r.ms < 1500, `refused after ${r.ms} ms`);
        }
        for (const [name, list, limit] of [
          ['a trickled management body', body, BODY_TIMEOUT_MS],
          ['a trickled /login/callback body', callback, BODY_TIMEOUT_MS],
          ['a head that never ends', head, HEADERS_TIMEOUT_MS],
        ] as const) {
          for (const r of list) {
            assert.equal(r.status, 408, `${name}: answered ${r.status}`);
            assert.ok(r.ms <= bound(limit), `${name}: closed after ${r.ms} ms (bound ${bound(limit)} ms)`);
          }
        }
        const latest = (list: { ms: number }[]) => Math.max(...list.map((r) => r.ms));
        t.diagnostic(`while slow clients were connected, slowest answers (ms): ${JSON.stringify(slowest)}; slow connections closed by (ms): body ${latest(body)}, callback ${latest(callback)}, head ${latest(head)}, anonymous ${latest(anonymous)}`);
        // And afterwards everything still works.
        assert.equal((await app.request('GET', '/gateway/v1/me', { key: adminKey })).status, 200);
      } finally {
        for (const s of all) s.destroy();
      }
    });

    test('a body that arrives in time is served; one that is announced too large is refused before it is read', async () => {
      // Sent in pieces over 1.5 s (less than the bound): the main thread waits for it and the worker serves it.
      const { port } = new URL(app.url);
      const body = JSON.stringify({ name: 'in-pieces' });
      const answer = await new Promise<string>((resolve) => {
        const s = net.connect(Number(port), '127.0.0.1', async () => {
          s.write(`POST /gateway/v1/me/keys HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${basic(adminKey)}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
          for (let i = 0; i < body.length; i += 4) {
            s.write(body.slice(i, i + 4));
            await sleep(1500 / (body.length / 4));
          }
        });
        let out = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => (out += d));
        s.on('close', () => resolve(out));
        s.on('error', () => {});
      });
      assert.match(answer, /^HTTP\/1\.1 201 /);
      const big = await timed((signal) =>
        fetch(`${app.url}/gateway/v1/me/keys`, { method: 'POST', headers: { authorization: basic(adminKey), 'content-type': 'application/json' }, body: 'x'.repeat(2 * 1024 * 1024), signal }),
      );
      assert.equal(big.status, 413);
    });
  });
}

describe('slow clients, the management API inline (TRACKGATE_MANAGEMENT_ISOLATE=inline)', { timeout: 30_000 }, () => {
  let app: TestApp;
  let adminKey: string;
  before(async () => {
    app = await startApp('sqlite', { managementIsolate: 'inline', requestHeadersTimeoutMs: HEADERS_TIMEOUT_MS, managementBodyTimeoutMs: BODY_TIMEOUT_MS });
    ({ adminKey } = await app.bootstrap());
  });
  after(() => app.close());

  test('a trickled body gets 408 within the bound; an anonymous one 401 before it is read', async () => {
    const head = (auth: boolean) =>
      `POST /gateway/v1/me/keys HTTP/1.1\r\nHost: localhost\r\n${auth ? `Authorization: ${basic(adminKey)}\r\n` : ''}Content-Type: application/json\r\nContent-Length: 200\r\n\r\n`;
    const slow = Array.from({ length: 20 }, () => slowClient(app.url, head(true), '{'));
    const anonymous = slowClient(app.url, head(false), '{');
    try {
      const me = await timed((signal) => fetch(`${app.url}/gateway/v1/me`, { headers: { authorization: basic(adminKey) }, signal }));
      assert.equal(me.status, 200);
      const a = await anonymous.closed;
      assert.equal(a.status, 401);
      assert.ok(a.ms < 1500);
      for (const r of await Promise.all(slow.map((s) => s.closed))) {
        assert.equal(r.status, 408);
        assert.ok(r.ms <= BODY_TIMEOUT_MS + 2500, `closed after ${r.ms} ms`);
      }
    } finally {
      for (const s of [...slow, anonymous]) s.destroy();
    }
  });
});
