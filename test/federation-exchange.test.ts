/**
 * Workload identity federation end to end: trust rules on a keyless service account, POST /oidc/token with
 * GitHub Actions' and Kubernetes' tokens (from a jose-built issuer on loopback), the access token on the
 * proxy, /auth/verify and the management API, and every refusal in RFC 6749's words.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { dialects, sleep, startApp } from './support/app.ts';
import type { TestApp, TestResponse } from './support/app.ts';
import { addRule, exchange, federatedAccount, JWT_BEARER, tokenForm } from './support/federation.ts';
import { startUpstream } from './support/upstream.ts';
import type { StubUpstream } from './support/upstream.ts';
import { startWorkloadIdp } from './support/workload-idp.ts';
import type { WorkloadIdp } from './support/workload-idp.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const TOKEN = /^tga-[A-Za-z0-9]{40}$/;

/** An RFC 6749 §5.2 error: exactly `error` and `error_description`, never cached. */
function oauthError(r: TestResponse, status: number, error: string): string {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.body as object).sort(), ['error', 'error_description'], r.text);
  assert.equal(r.body.error, error, r.text);
  assert.equal(typeof r.body.error_description, 'string');
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return r.body.error_description as string;
}

for (const dialect of dialects()) {
  describe(`workload token exchange at /oidc/token (${dialect})`, () => {
    let upstream: StubUpstream;
    let app: TestApp;
    let gh: WorkloadIdp;
    let k8s: WorkloadIdp;
    let stranger: WorkloadIdp;
    let acct: Awaited<ReturnType<typeof federatedAccount>>;
    let alice: { key: string; username: string };
    let refusedDescription: string | undefined;

    /** A refusal: invalid_grant with the one fixed description, whatever the check. */
    const refused = async (assertion: string) => {
      const d = oauthError(await exchange(app, assertion), 400, 'invalid_grant');
      refusedDescription ??= d;
      assert.equal(d, refusedDescription, 'every refusal says the same');
    };
    const audit = async (action: string) => (await app.request('GET', `/gateway/v1/orgs/${acct.org}/audit?action=${action}`, { key: acct.adminKey })).body.events as Array<{ actor: { type: string; id: string | null; name: string | null }; details: Record<string, unknown> }>;

    before(async () => {
      upstream = await startUpstream();
      app = await startApp(dialect, { upstreamUrl: upstream.url, allowHttpIssuers: true });
      [gh, k8s, stranger] = await Promise.all([startWorkloadIdp('github'), startWorkloadIdp('kubernetes'), startWorkloadIdp('github')]);
      acct = await federatedAccount(app);
      alice = await app.createUser({ org: acct.org, username: `alice-${acct.org}` });
      assert.equal((await app.request('PUT', `/gateway/v1/teams/${acct.team}/members/${alice.username}`, { key: acct.adminKey, body: { role: 'member' } })).status, 201);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'train on main', issuer: gh.issuer, subject: 'repo:acme/train:ref:refs/heads/main', conditions: { repository_owner: 'acme' } });
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'ml namespace', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:*' });
    });
    after(async () => {
      await app.close();
      await Promise.all([upstream.close(), gh.close(), k8s.close(), stranger.close()]);
    });

    test('a GitHub Actions token becomes an access token of the service account: on the proxy (with attribution), /auth/verify and the API', async () => {
      const r = await exchange(app, await gh.mint(acct.org));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body as object).sort(), ['access_token', 'expires_in', 'token_type']);
      assert.match(r.body.access_token, TOKEN);
      assert.equal(r.body.token_type, 'Bearer');
      assert.equal(r.body.expires_in, 3600);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal(r.headers.get('pragma'), 'no-cache');
      const token = r.body.access_token as string;
      const bearer = { Authorization: `Bearer ${token}` };

      upstream.reset();
      const proxied = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { ...bearer, 'Content-Type': 'application/json', 'X-WANDB-USERNAME': alice.username }, body: '{}' });
      assert.equal(proxied.status, 200, await proxied.text());
      const seen = upstream.requests[0]!;
      assert.equal(seen.headers['x-trackgate-user'], acct.sa.username);
      assert.equal(seen.headers['x-trackgate-principal-type'], 'service_account');
      assert.equal(seen.headers['x-trackgate-teams'], acct.team);
      assert.equal(seen.headers['x-trackgate-attributed-user'], alice.username);
      assert.ok(seen.headers['x-trackgate-assertion']);
      assert.equal(seen.headers.authorization, undefined, 'the access token never reaches the upstream');
      assert.ok(!JSON.stringify(seen.rawHeaders).includes(token));

      const verify = await fetch(`${app.url}/auth/verify`, { headers: bearer });
      assert.equal(verify.status, 200);
      assert.equal(verify.headers.get('x-trackgate-user'), acct.sa.username);

      const me = await app.request('GET', '/gateway/v1/me', { headers: bearer });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.principal_type, 'service_account');
      assert.equal(me.body.username, acct.sa.username);
      // It is the service account and no more: no management.
      assert.ok([403, 404].includes((await app.request('GET', `/gateway/v1/orgs/${acct.org}/users`, { headers: bearer })).status));

      const issued = (await audit('access_token.issue'))[0]!;
      assert.deepEqual(issued.actor, { type: 'service_account', id: acct.sa.id, name: acct.sa.username });
      assert.equal(issued.details.issuer, gh.issuer);
      assert.equal(issued.details.subject, 'repo:acme/train:ref:refs/heads/main');
      assert.equal(issued.details.token_id, token.slice(0, (issued.details.token_id as string).length));
      assert.ok(issued.details.credential && issued.details.expires_at);
    });

    test('a Kubernetes service-account token (aud as a list, a prefix rule); one without jti is used once', async () => {
      const r = await exchange(app, await k8s.mint(acct.org));
      assert.equal(r.status, 200, r.text);
      assert.match(r.body.access_token, TOKEN);
      const noJti = await k8s.mint(acct.org, { noJti: true, claims: { sub: 'system:serviceaccount:ml:eval' } });
      assert.equal((await exchange(app, noJti)).status, 200);
      await refused(noJti);
      assert.ok(k8s.requests.includes('/openid/v1/jwks') && k8s.requests.includes('/.well-known/openid-configuration'));
    });

    test('refused, each with invalid_grant and the same words: audience, subject, condition, times, lifetime, algorithms, keys, replay', async () => {
      await refused(await gh.mint('another-org'));
      await refused(await gh.mint(acct.org, { claims: { sub: 'repo:acme/train:ref:refs/heads/dev' } }));
      await refused(await gh.mint(acct.org, { claims: { repository_owner: 'acme-evil' } }));
      await refused(await gh.mint(acct.org, { expiredSecondsAgo: 600 }));
      await refused(await gh.mint(acct.org, { notBeforeInSeconds: 600 }));
      await refused(await gh.mint(acct.org, { lifetimeSeconds: 86_400 + 600 }));
      await refused(await gh.mint(acct.org, { algNone: true }));
      await refused(await gh.mint(acct.org, { hs256WithPublicKey: true }));
      await refused(await gh.mint(acct.org, { unknownKey: true }));
      await refused(await gh.mint(acct.org, { claims: { aud: undefined } }));
      await refused(await gh.mint(acct.org, { claims: { exp: undefined } }));
      await refused('not.a.jwt');
      const once = await gh.mint(acct.org);
      assert.equal((await exchange(app, once)).status, 200);
      await refused(once);

      // The detail is in the log and, for tokens naming this organization, in its audit; never in the answer.
      const log = readFileSync(app.logFile, 'utf8');
      for (const reason of ['no_matching_rule', 'expired', 'claim_nbf', 'lifetime_too_long', 'alg_not_allowed', 'unknown_key', 'replayed']) {
        assert.ok(log.includes(`"reason":"${reason}"`), `logged: ${reason}`);
      }
      const refusals = await audit('access_token.refused');
      const reasons = new Set(refusals.map((e) => e.details.reason));
      for (const reason of ['no_matching_rule', 'expired', 'alg_not_allowed', 'replayed']) assert.ok(reasons.has(reason), `audited: ${reason}`);
      assert.ok(refusals.every((e) => e.actor.type === 'workload'));
      // The token naming another organization was not audited here.
      assert.equal(refusals.filter((e) => e.details.reason === 'no_matching_rule').length, 2);
    });

    test('a token from an issuer no rule trusts is refused without fetching anything from it', async () => {
      await refused(await stranger.mint(acct.org));
      assert.deepEqual(stranger.requests, []);
    });

    test('rules of two service accounts matching one token: refused (ambiguous); the other subjects still work', async () => {
      const other = await app.request('POST', `/gateway/v1/teams/${acct.team}/service-accounts`, { key: acct.adminKey, body: { name: 'evaluator' } });
      assert.equal(other.status, 201, other.text);
      await addRule(app, acct.adminKey, other.body.id, { name: 'evaluator', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:evaluator' });
      await refused(await k8s.mint(acct.org, { claims: { sub: 'system:serviceaccount:ml:evaluator' } }));
      assert.equal((await exchange(app, await k8s.mint(acct.org, { claims: { sub: 'system:serviceaccount:ml:trainer' } }))).status, 200);
      assert.ok((await audit('access_token.refused')).some((e) => e.details.reason === 'ambiguous'));
    });

    test('an issuer that is down: 503 temporarily_unavailable with Retry-After (not the client\'s fault)', async () => {
      const flaky = await startWorkloadIdp('kubernetes');
      try {
        await addRule(app, acct.adminKey, acct.sa.id, { name: 'flaky cluster', issuer: flaky.issuer, subject: 'system:serviceaccount:ml:trainer' });
        flaky.setDown(true);
        const r = await exchange(app, await flaky.mint(acct.org));
        oauthError(r, 503, 'temporarily_unavailable');
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
      } finally {
        await flaky.close();
      }
    });

    test('a discovery document naming another issuer is refused', async () => {
      const liar = await startWorkloadIdp('github', { owner: 'acme' });
      try {
        await addRule(app, acct.adminKey, acct.sa.id, { name: 'liar', issuer: liar.issuer, subject: 'repo:acme/train:ref:refs/heads/main' });
        liar.setDiscovery({ issuer: gh.issuer });
        await refused(await liar.mint(acct.org));
        assert.ok(!liar.requests.includes('/.well-known/jwks'), 'its keys are not fetched');
      } finally {
        await liar.close();
      }
    });

    test('the request itself: grant type, parameters, content type, size, method, path — all in RFC 6749 shape', async () => {
      const jwt = await gh.mint(acct.org);
      const post = (body: string, headers: Record<string, string> = FORM) => app.request('POST', '/oidc/token', { rawBody: body, headers });
      oauthError(await post(`grant_type=client_credentials&assertion=${jwt}`), 400, 'unsupported_grant_type');
      oauthError(await post(`assertion=${jwt}`), 400, 'invalid_request');
      oauthError(await post(`grant_type=${encodeURIComponent(JWT_BEARER)}`), 400, 'invalid_request');
      oauthError(await post(`grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=`), 400, 'invalid_request');
      oauthError(await post(`${tokenForm(jwt)}&assertion=${jwt}`), 400, 'invalid_request');
      oauthError(await post(`${tokenForm(jwt)}&grant_type=${encodeURIComponent(JWT_BEARER)}`), 400, 'invalid_request');
      oauthError(await post(JSON.stringify({ grant_type: JWT_BEARER, assertion: jwt }), { 'content-type': 'application/json' }), 415, 'invalid_request');
      oauthError(await post(tokenForm(jwt), { 'content-type': 'text/plain' }), 415, 'invalid_request');
      oauthError(await post(tokenForm('x'.repeat(9000))), 400, 'invalid_request');
      // Over the main isolate's 1 MB: refused before the worker sees it, in the same shape.
      const huge = await post(tokenForm('x'.repeat(1_100_000)));
      assert.ok(huge.status === 413 || huge.status === 400, huge.text);
      oauthError(huge, huge.status, 'invalid_request');
      const get = await app.request('GET', '/oidc/token');
      oauthError(get, 405, 'invalid_request');
      assert.equal(get.headers.get('allow'), 'POST');
      oauthError(await app.request('PUT', '/oidc/token', { rawBody: tokenForm(jwt), headers: FORM }), 405, 'invalid_request');
      oauthError(await app.request('GET', '/oidc/x'), 404, 'invalid_request');
      oauthError(await app.request('POST', '/oidc/authorize', { rawBody: tokenForm(jwt), headers: FORM }), 404, 'invalid_request');
      // None of these spent the assertion.
      assert.equal((await exchange(app, jwt)).status, 200);
    });

    test('an expired access token is refused with access_token_expired; a revoked one with access_token_revoked', async () => {
      const token = (await exchange(app, await gh.mint(acct.org))).body.access_token as string;
      const db = app.gw.core.database.db;
      // Expired before its first use (so nothing cached it): what an hour later looks like.
      const past = new Date(Date.now() - 1000).toISOString();
      await db.updateTable('access_tokens').set({ expires_at: past }).where('token_hash', '=', sha256(token)).execute();
      const me = await app.request('GET', '/gateway/v1/me', { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(me.status, 401, me.text);
      assert.equal(me.body.error.code, 'access_token_expired');
      const verify = await fetch(`${app.url}/auth/verify`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(verify.status, 401);
      assert.equal(((await verify.json()) as { error: { code: string } }).error.code, 'access_token_expired');

      const other = (await exchange(app, await gh.mint(acct.org))).body.access_token as string;
      await db.updateTable('access_tokens').set({ revoked_at: past }).where('token_hash', '=', sha256(other)).execute();
      const revoked = await app.request('GET', '/gateway/v1/me', { headers: { Authorization: `Bearer ${other}` } });
      assert.equal(revoked.body.error.code, 'access_token_revoked');
      const unknown = await app.request('GET', '/gateway/v1/me', { headers: { Authorization: `Bearer ${other.slice(0, 4)}${'A'.repeat(40)}` } });
      assert.equal(unknown.status, 401);
    });
    test('an organization no longer on the enterprise plan: no exchange, and its unused tokens do not authenticate', async () => {
      const other = await federatedAccount(app, 'builder');
      await addRule(app, other.adminKey, other.sa.id, { name: 'k8s', issuer: k8s.issuer, subject: 'system:serviceaccount:ml:trainer' });
      const token = (await exchange(app, await k8s.mint(other.org))).body.access_token as string;
      assert.match(token, TOKEN);
      const db = app.gw.core.database.db;
      await db.updateTable('orgs').set({ plan: 'standard' }).where('slug', '=', other.org).execute();
      try {
        await refused(await k8s.mint(other.org));
        assert.equal((await fetch(`${app.url}/auth/verify`, { headers: { Authorization: `Bearer ${token}` } })).status, 401);
      } finally {
        await db.updateTable('orgs').set({ plan: 'enterprise' }).where('slug', '=', other.org).execute();
      }
    });

    test('the management worker down: /oidc/token answers 503 temporarily_unavailable in RFC 6749 shape, then serves again', async () => {
      const jwt = await gh.mint(acct.org);
      await app.gw.management!.kill();
      const r = await exchange(app, jwt);
      oauthError(r, 503, 'temporarily_unavailable');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      const deadline = Date.now() + 20_000;
      let back: TestResponse;
      do {
        await sleep(100);
        back = await exchange(app, jwt);
      } while (back.status === 503 && Date.now() < deadline);
      assert.equal(back.status, 200, back.text);
    });

    test('the prune: access tokens expired for more than a day and replay records past their expiry are deleted, live ones kept', async () => {
      const pruner = app.gw.core.federationPruner;
      assert.ok(pruner, 'the isolate that migrates prunes');
      const db = app.gw.core.database.db;
      const count = async (t: 'access_tokens' | 'federation_replays') => Number((await db.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      const [tokens, replays] = [await count('access_tokens'), await count('federation_replays')];
      assert.ok(tokens > 0 && replays > 0);
      assert.deepEqual(await pruner.prune(Date.now()), { accessTokens: 0, replays: 0 }, 'nothing is old enough yet');
      // Two days later, every token (an hour each) expired more than a day ago, and every assertion has expired.
      assert.deepEqual(await pruner.prune(Date.now() + 2 * 86_400_000), { accessTokens: tokens, replays });
      assert.equal(await count('access_tokens'), 0);
    });
  });

  describe(`workload token exchange: http issuers and the failure limit (${dialect})`, () => {
    let app: TestApp;
    let gh: WorkloadIdp;

    before(async () => {
      gh = await startWorkloadIdp('github');
      // Production settings: http issuers not allowed; a low failure limit.
      app = await startApp(dialect, { authFailureLimit: 3 });
    });
    after(async () => {
      await app.close();
      await gh.close();
    });

    test('an http issuer (a rule written while allowed) is refused without a fetch; refusals past the limit get 429', async () => {
      const acct = await federatedAccount(app);
      // The API refuses an http issuer here: the row as a development database copied over would hold it.
      const { randomUUID } = await import('node:crypto');
      await app.gw.core.store.repos.federatedCredentials.insert({
        id: randomUUID(),
        org_id: (await app.gw.core.store.repos.orgs.findBySlug(acct.org))!.id,
        service_account_id: acct.sa.id,
        name: 'dev',
        issuer: gh.issuer,
        audience: acct.org,
        subject: 'repo:acme/train:ref:refs/heads/main',
        conditions: '{}',
        created_by: null,
        created_at: new Date().toISOString(),
      });
      for (let i = 0; i < 3; i++) oauthError(await exchange(app, await gh.mint(acct.org)), 400, 'invalid_grant');
      assert.deepEqual(gh.requests, [], 'nothing fetched from an http issuer');
      const limited = await exchange(app, await gh.mint(acct.org));
      oauthError(limited, 429, 'temporarily_unavailable');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    });
  });
}
