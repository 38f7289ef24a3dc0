/**
 * Issue 17 from an outsider's side: what an attacker with a workload token, an organization of their own, or a
 * captured assertion tries at /oidc/token, and what must hold. Each test here once failed against the code it
 * guards (see the commit that added it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { AppError } from '../src/errors/app-error.ts';
import { ScannerKeys } from '../src/secret-scanning/scanner-keys.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { addRule, exchange, federatedAccount } from './support/federation.ts';
import { startWorkloadIdp } from './support/workload-idp.ts';
import type { WorkloadIdp } from './support/workload-idp.ts';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The same JWS with its signature segment written differently but decoding to the same bytes: the unused low
 * bits of the last base64url character flipped (an RS256 signature of 256 bytes leaves four of them).
 */
function reencoded(jwt: string): string {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  const last = B64URL.indexOf(s.at(-1) ?? 'A');
  return `${h}.${p}.${s.slice(0, -1)}${B64URL[last ^ 1]}`;
}

for (const dialect of dialects()) {
  describe(`federation attacks (${dialect})`, () => {
    let app: TestApp;
    let gh: WorkloadIdp;

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true });
      gh = await startWorkloadIdp('github');
    });
    after(async () => {
      await app.close();
      await gh.close();
    });

    test('a used assertion without jti, its signature re-encoded (same bytes, other text), is still a replay', async () => {
      const acct = await federatedAccount(app);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'main', issuer: gh.issuer, subject: 'repo:acme/train:ref:refs/heads/main' });
      const jwt = await gh.mint(acct.org, { noJti: true });
      assert.equal((await exchange(app, jwt)).status, 200);
      const again = reencoded(jwt);
      assert.notEqual(again, jwt);
      const r = await exchange(app, again);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error, 'invalid_grant');
    });

    test('a signed token whose sub or jti holds a NUL or is huge: invalid_grant, never a 5xx (PostgreSQL text refuses NUL)', async () => {
      const acct = await federatedAccount(app);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'prefix', issuer: gh.issuer, subject: 'repo:acme/train:*' });
      for (const claims of [{ sub: 'repo:acme/train:ref:\u0000' }, { sub: `repo:acme/train:${'x'.repeat(2000)}` }, { jti: 'j\u0000' }, { jti: 'j'.repeat(2000) }]) {
        const r = await exchange(app, await gh.mint(acct.org, { claims }));
        assert.equal(r.status, 400, `${JSON.stringify(claims).slice(0, 80)}: ${r.text}`);
        assert.equal(r.body.error, 'invalid_grant');
      }
      assert.equal((await exchange(app, await gh.mint(acct.org))).status, 200, 'an ordinary token of the same rule still works');
    });

    test("another organization's rule with this organization's slug as its audience neither takes its tokens nor makes them ambiguous", async () => {
      const victim = await federatedAccount(app);
      const evil = await federatedAccount(app, 'impostor');
      const subject = `repo:acme/train:ref:refs/heads/main`;
      await addRule(app, victim.adminKey, victim.sa.id, { name: 'main', issuer: gh.issuer, subject });
      // The attacker's organization (enterprise, as anyone can be) claims the victim's audience and subject.
      await addRule(app, evil.adminKey, evil.sa.id, { name: 'theirs', issuer: gh.issuer, audience: victim.org, subject });
      const r = await exchange(app, await gh.mint(victim.org));
      assert.equal(r.status, 200, r.text);
      const issued = (await app.request('GET', `/gateway/v1/orgs/${victim.org}/audit?action=access_token.issue`, { key: victim.adminKey })).body.events as unknown[];
      assert.equal(issued.length, 1);
      const stolen = (await app.request('GET', `/gateway/v1/orgs/${evil.org}/audit?action=access_token.issue`, { key: evil.adminKey })).body.events as unknown[];
      assert.equal(stolen.length, 0);
    });

    test('older rules of other organizations on the same issuer (hundreds: a shared issuer) do not crowd out a newer one', async () => {
      const filler = await federatedAccount(app, 'filler-0');
      const team = filler.team;
      const ids = [filler.sa.id];
      for (let i = 1; i < 21; i++) {
        const r = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: filler.adminKey, body: { name: `filler-${i}`, keyless: true } });
        assert.equal(r.status, 201, r.text);
        ids.push(r.body.id as string);
      }
      await Promise.all(
        ids.map(async (id, i) => {
          for (let j = 0; j < 10; j++) await addRule(app, filler.adminKey, id, { name: `r${j}`, issuer: gh.issuer, audience: `aud-${i}-${j}`, subject: `repo:other${i}/x${j}:ref:refs/heads/main` });
        }),
      );
      const late = await federatedAccount(app, 'late');
      await addRule(app, late.adminKey, late.sa.id, { name: 'main', issuer: gh.issuer, subject: 'repo:acme/train:ref:refs/heads/main' });
      const r = await exchange(app, await gh.mint(late.org));
      assert.equal(r.status, 200, r.text);
    });

    test('a condition on a claim named __proto__ is refused, not silently dropped (which would widen the rule)', async () => {
      const acct = await federatedAccount(app);
      const r = await app.request('POST', `/gateway/v1/service-accounts/${acct.sa.id}/federated-credentials`, {
        key: acct.adminKey,
        rawBody: '{"name":"p","issuer":"' + gh.issuer + '","subject":"repo:acme/train:ref:refs/heads/main","conditions":{"__proto__":"x"}}',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 400, r.text);
    });
  });
}

describe('secret scanning: the keys URL cannot be made a fetch per report', () => {
  test('while the scanner keys URL fails, reports with made-up headers fetch it once per cooldown, not once each', async () => {
    let fetches = 0;
    const fetcher = {
      fetch: () => {
        fetches++;
        return Promise.resolve(new Response('down', { status: 503 }));
      },
    };
    let now = 1_000_000;
    const keys = new ScannerKeys(fetcher, { url: 'https://scanner.example/keys', cooldownMs: 60_000, now: () => now });
    for (let i = 0; i < 20; i++) await assert.rejects(keys.check(Buffer.from('[]'), `k${i}`, 'AAAA'), (e: unknown) => e instanceof AppError && e.kind === 'unavailable');
    assert.equal(fetches, 1);
    now += 61_000;
    await assert.rejects(keys.check(Buffer.from('[]'), 'k', 'AAAA'));
    assert.equal(fetches, 2);
  });
});

for (const dialect of dialects()) {
  describe(`federation attacks on the assertion's shape (${dialect})`, () => {
    let app: TestApp;
    let gh: WorkloadIdp;
    let acct: Awaited<ReturnType<typeof federatedAccount>>;
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true });
      gh = await startWorkloadIdp('github');
      acct = await federatedAccount(app);
      await addRule(app, acct.adminKey, acct.sa.id, { name: 'main', issuer: gh.issuer, subject: 'repo:acme/train:ref:refs/heads/main' });
    });
    after(async () => {
      await app.close();
      await gh.close();
    });

    /** The honest token's claims, re-signed by a key of the attacker's with the header given. */
    async function forged(header: Record<string, unknown>, claims: Record<string, unknown> = {}): Promise<string> {
      const honest = await gh.mint(acct.org);
      const payload = { ...(JSON.parse(Buffer.from(honest.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>), ...claims };
      const { privateKey, publicKey } = await generateKeyPair('RS256');
      const jwk = await exportJWK(publicKey);
      const kid = (JSON.parse(Buffer.from(honest.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, ...header, ...(header.jwk === true ? { jwk } : {}) }).sign(privateKey);
    }

    test("a foreign key under the issuer's kid, with the key embedded (jwk), or pointed at (jku, x5u): refused", async () => {
      for (const header of [{}, { jwk: true }, { jku: `${gh.issuer}/attacker-jwks` }, { x5u: `${gh.issuer}/attacker.pem` }]) {
        const r = await exchange(app, await forged(header));
        assert.equal(r.status, 400, `${JSON.stringify(header)}: ${r.text}`);
        assert.equal(r.body.error, 'invalid_grant');
      }
      assert.ok(!gh.requests.some((p) => p.includes('attacker')), 'no header URL was fetched');
    });

    test('NUL bytes, huge or odd-typed iss and aud before any signature: invalid_grant, never a 5xx', async () => {
      const garbage = (claims: Record<string, unknown>) => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub: 's', exp: 9e9, ...claims })}.AAAA`;
      for (const claims of [
        { iss: `${gh.issuer}\u0000`, aud: acct.org },
        { iss: gh.issuer, aud: `${acct.org}\u0000` },
        { iss: gh.issuer, aud: [acct.org, '\u0000', { x: 1 }, 7] },
        { iss: gh.issuer, aud: 'x'.repeat(5000) },
        { iss: { toString: 1 }, aud: acct.org },
        { iss: gh.issuer, aud: '__proto__' },
      ]) {
        const r = await exchange(app, garbage(claims));
        assert.equal(r.status, 400, `${JSON.stringify(claims)}: ${r.text}`);
        assert.equal(r.body.error, 'invalid_grant');
      }
    });
  });
}
