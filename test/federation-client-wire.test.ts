/**
 * The tracking client's side of workload federation, as its Go core does it (WANDB_IDENTITY_TOKEN_FILE;
 * /work/shared/notes/federation.md): a small faithful model of that code — the form it posts to
 * {base_url}/oidc/token without client authentication, the token file re-read and trimmed for each exchange,
 * the credentials file (0600) keyed by base URL with expires_at in its "2006-01-02 15:04:05" layout, a refresh
 * when 5 minutes or less remain, `Authorization: Bearer` on every call, a 4xx other than 429 final and 429/5xx
 * retried 3 times — against the gateway proxying to a stub API that answers the client's `viewer` query from
 * the identity headers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { addRule, federatedAccount, goQueryEscape, JWT_BEARER, tokenForm } from './support/federation.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { startWorkloadIdp } from './support/workload-idp.ts';
import type { WorkloadIdp } from './support/workload-idp.ts';

/** The client's `wandb login` check (DESIGN.md). */
const VIEWER = JSON.stringify({ query: 'query Viewer{ viewer { id entity username email flags teams { edges { node { name } } } } }', variables: {} });
/** TokenExchangeRetryMax. */
const RETRY_MAX = 3;
/** IsTokenExpiring: time.Until(expires_at) <= 5 minutes. */
const REFRESH_BEFORE_MS = 5 * 60_000;

class TokenExchangeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`token exchange rejected: HTTP ${status}: ${body}`);
  }
}

/** Go's "2006-01-02 15:04:05", UTC: seconds precision, as the credentials file keeps it. */
const goTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const fromGoTime = (s: string) => Date.parse(s.replace(' ', 'T') + 'Z');

/** The client's oauth2CredentialProvider, modelled: one per process; `now` is the client's clock. */
class WorkloadClient {
  exchanges = 0;
  attempts = 0;
  /** Each exchange's request as sent: body and headers. */
  sent: Array<{ body: string; headers: Record<string, string> }> = [];
  private token: { accessToken: string; expiresAt: number } | null = null;

  constructor(
    private readonly baseUrl: string,
    private readonly tokenFile: string,
    private readonly credentialsFile: string,
    private readonly now: () => number,
  ) {}

  private expiring(t: { expiresAt: number } | null | undefined): boolean {
    return !t || t.expiresAt - this.now() <= REFRESH_BEFORE_MS;
  }

  async accessToken(): Promise<string> {
    if (this.expiring(this.token)) {
      type CredentialsFile = { credentials: Record<string, { access_token: string; expires_at: string }> };
      let file: CredentialsFile | null;
      try {
        file = JSON.parse(readFileSync(this.credentialsFile, 'utf8')) as CredentialsFile;
      } catch {
        file = null;
      }
      const saved = file?.credentials[this.baseUrl];
      const fromFile = saved ? { accessToken: saved.access_token, expiresAt: fromGoTime(saved.expires_at) } : null;
      if (fromFile && !this.expiring(fromFile)) this.token = fromFile;
      else {
        this.token = await this.fetchAccessToken();
        const credentials = { ...(file?.credentials ?? {}), [this.baseUrl]: { expires_at: goTime(this.token.expiresAt), access_token: this.token.accessToken } };
        writeFileSync(this.credentialsFile, JSON.stringify({ credentials }, null, 2), { mode: 0o600 });
      }
    }
    return this.token!.accessToken;
  }

  private async fetchAccessToken(): Promise<{ accessToken: string; expiresAt: number }> {
    // Read and trimmed for every exchange: the orchestrator rotates the file.
    const identityToken = readFileSync(this.tokenFile, 'utf8').trim();
    const body = `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=${goQueryEscape(identityToken)}`;
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    this.exchanges++;
    this.sent.push({ body, headers });
    let status = 0;
    let text = '';
    for (let attempt = 0; attempt <= RETRY_MAX; attempt++) {
      this.attempts++;
      const res = await fetch(`${this.baseUrl}/oidc/token`, { method: 'POST', headers, body });
      status = res.status;
      text = await res.text();
      if (status === 200 || (status >= 400 && status < 500 && status !== 429)) break;
      // retryablehttp waits 1–5 s; a test need not.
      await new Promise((r) => setTimeout(r, 10));
    }
    if (status !== 200) {
      if (status >= 400 && status < 500 && status !== 429) throw new TokenExchangeError(status, text);
      throw new Error(`failed to retrieve access token: HTTP ${status}: ${text}`);
    }
    const answer = JSON.parse(text) as { access_token: string; expires_in: number };
    assert.equal(typeof answer.access_token, 'string');
    assert.ok(Number.isInteger(answer.expires_in));
    return { accessToken: answer.access_token, expiresAt: this.now() + answer.expires_in * 1000 };
  }

  /** An API call: the access token as Bearer (an API key would go as Basic api:<key>). */
  async viewer(): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.baseUrl}/graphql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await this.accessToken()}`, 'Content-Type': 'application/json', 'User-Agent': 'W&B Internal Client 0.22.0' },
      body: VIEWER,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
}

for (const dialect of dialects()) {
  describe(`the tracking client's workload federation on the wire (${dialect})`, () => {
    let upstream: StubUpstream;
    let app: TestApp;
    let k8s: WorkloadIdp;
    let acct: Awaited<ReturnType<typeof federatedAccount>>;
    let dir: string;
    let tokenFile: string;
    let clock: number;
    const newClient = (credentials = join(dir, 'credentials.json')) => new WorkloadClient(app.url, tokenFile, credentials, () => clock);
    /** The orchestrator writes a fresh token (with a trailing newline, as files have). */
    const rotateTokenFile = async (claims: Record<string, unknown> = {}) => {
      const jwt = await k8s.mint(acct.org, { claims });
      writeFileSync(tokenFile, jwt + '\n');
      return jwt;
    };

    before(async () => {
      upstream = await startUpstream();
      // The stub tracking API: `viewer` from the identity headers trackgate sends.
      upstream.route('/graphql', (req, res, recorded) => {
        const h = recorded.headers;
        res.setHeader('content-type', 'application/json');
        if (h.authorization !== undefined || !h['x-trackgate-user']) {
          res.statusCode = 401;
          return res.end(JSON.stringify({ errors: [{ message: 'not from the gateway' }] }));
        }
        req.resume();
        req.on('end', () => {
          const teams = String(h['x-trackgate-teams'] ?? '').split(',').filter(Boolean);
          res.end(JSON.stringify({ data: { viewer: { id: h['x-trackgate-user-id'] ?? null, entity: h['x-trackgate-user'], username: h['x-trackgate-user'], email: h['x-trackgate-email'] ?? null, flags: '{}', teams: { edges: teams.map((name) => ({ node: { name } })) } } } }));
        });
      });
      // expires_in 600: fresh for 5 minutes of the client's clock, then due for refresh.
      app = await startApp(dialect, { upstreamUrl: upstream.url, allowHttpIssuers: true, federationAccessTokenTtlSeconds: 600 });
      k8s = await startWorkloadIdp('kubernetes');
      acct = await federatedAccount(app);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'trainer', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:trainer' });
      dir = mkdtempSync(join(tmpdir(), 'wandb-client-'));
      tokenFile = join(dir, 'identity-token');
      clock = Date.now();
    });
    after(async () => {
      await app.close();
      await Promise.all([upstream.close(), k8s.close()]);
      rmSync(dir, { recursive: true, force: true });
    });

    test('exchange on first use, the exact form and no client authentication; viewer answered as the service account; cached while fresh', async () => {
      const jwt = await rotateTokenFile();
      const client = newClient();
      const v = await client.viewer();
      assert.equal(v.status, 200, JSON.stringify(v.body));
      assert.equal(v.body.data.viewer.username, acct.sa.username);
      assert.deepEqual(v.body.data.viewer.teams.edges, [{ node: { name: acct.team } }]);
      assert.equal(client.exchanges, 1);
      // Byte for byte: what the Go core formats (and what the shared helper says it does).
      assert.equal(client.sent[0]!.body, `grant_type=${JWT_BEARER}&assertion=${jwt}`);
      assert.equal(client.sent[0]!.body, tokenForm(jwt));
      assert.deepEqual(Object.keys(client.sent[0]!.headers), ['Content-Type']);
      // The credentials file: 0600, keyed by base URL, the token and its expiry in the client's layout.
      assert.equal(statSync(join(dir, 'credentials.json')).mode & 0o777, 0o600);
      const saved = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')).credentials[app.url];
      assert.match(saved.access_token, /^tga-[A-Za-z0-9]{40}$/);
      assert.match(saved.expires_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

      // Every later call: the same Bearer token, no exchange (600 s left > 5 minutes).
      upstream.reset();
      for (let i = 0; i < 3; i++) assert.equal((await client.viewer()).status, 200);
      assert.equal(client.exchanges, 1);
      assert.ok(upstream.requests.every((r) => r.headers.authorization === undefined && r.headers['x-trackgate-user'] === acct.sa.username));
      // Another process with the same credentials file uses the saved token.
      const second = newClient();
      assert.equal((await second.viewer()).status, 200);
      assert.equal(second.exchanges, 0);
    });

    test('refresh when 5 minutes or less remain: the token file is read again (the old assertion would be a replay)', async () => {
      const client = newClient();
      assert.equal((await client.viewer()).status, 200);
      const before = client.exchanges;
      const rotated = await rotateTokenFile();
      clock += 301_000; // 600 − 301 = 299 s left: due.
      const v = await client.viewer();
      assert.equal(v.status, 200, JSON.stringify(v.body));
      assert.equal(client.exchanges, before + 1);
      assert.equal(client.sent.at(-1)!.body, tokenForm(rotated));
      const jti = decodeJwt(rotated).jti!;
      const replay = await app.gw.core.database.db.selectFrom('federation_replays').select('jti').where('jti', '=', jti).executeTakeFirst();
      assert.ok(replay, 'the rotated token was the one exchanged');
      // Had the client sent the old file's token again, the gateway would have refused it: that is what re-reading avoids.
      clock += 1000;
      assert.equal((await client.viewer()).status, 200);
      assert.equal(client.exchanges, before + 1, 'fresh again: no exchange');
    });

    test('a 4xx other than 429 is final: one attempt, the error kept', async () => {
      await rotateTokenFile({ sub: 'system:serviceaccount:ml:intruder' });
      const client = newClient(join(dir, 'other-credentials.json'));
      await assert.rejects(client.viewer(), (err: unknown) => {
        assert.ok(err instanceof TokenExchangeError);
        assert.equal(err.status, 400);
        assert.equal(JSON.parse(err.body).error, 'invalid_grant');
        return true;
      });
      assert.equal(client.attempts, 1);
    });

    test('a 5xx is retried 3 times (the issuer down: 503), then the client gives up', async () => {
      const down = await startWorkloadIdp('kubernetes');
      try {
        await addRule(app, acct.adminKey, acct.sa.id, { name: 'down cluster', issuer: down.issuer, subject: 'system:serviceaccount:ml:trainer' });
        down.setDown(true);
        writeFileSync(tokenFile, (await down.mint(acct.org)) + '\n');
        const client = newClient(join(dir, 'down-credentials.json'));
        await assert.rejects(client.viewer(), /HTTP 503/);
        assert.equal(client.attempts, 1 + RETRY_MAX);
        const served = readFileSync(app.logFile, 'utf8').split('\n').filter((l) => l.includes('"path":"/oidc/token"') && l.includes('"status":503'));
        assert.equal(served.length, 1 + RETRY_MAX, 'the gateway answered each attempt');
      } finally {
        await down.close();
      }
    });
  });

  describe(`the tracking client and the exchange failure limit (${dialect})`, () => {
    let app: TestApp;
    let k8s: WorkloadIdp;
    let dir: string;

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true, authFailureLimit: 2 });
      k8s = await startWorkloadIdp('kubernetes');
      dir = mkdtempSync(join(tmpdir(), 'wandb-client-'));
    });
    after(async () => {
      await app.close();
      await k8s.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('429 is retried 3 times like a 5xx', async () => {
      const acct = await federatedAccount(app);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'trainer', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:trainer' });
      const tokenFile = join(dir, 'identity-token');
      writeFileSync(tokenFile, (await k8s.mint('not-this-org')) + '\n');
      for (let i = 0; i < 2; i++) await assert.rejects(new WorkloadClient(app.url, tokenFile, join(dir, `c${i}.json`), Date.now).viewer(), TokenExchangeError);
      writeFileSync(tokenFile, (await k8s.mint(acct.org)) + '\n');
      const client = new WorkloadClient(app.url, tokenFile, join(dir, 'c.json'), Date.now);
      await assert.rejects(client.viewer(), /HTTP 429/);
      assert.equal(client.attempts, 1 + RETRY_MAX);
    });
  });
}
