/**
 * Identity assertion signing keys: generated on first start, sealed at rest,
 * rotated with an overlap (prepublished successor, retired key kept in the
 * JWKS), and assertions cached per principal until shortly before expiry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { openDatabase, migrateToLatest } from '../src/db/database.ts';
import type { Database } from '../src/db/database.ts';
import { SecretBox } from '../src/crypto/secret-box.ts';
import { SigningKeysRepository } from '../src/assertions/signing-keys.repository.ts';
import type { SigningKeysTables } from '../src/assertions/signing-keys.tables.ts';
import { SigningKeyService } from '../src/assertions/signing-keys.service.ts';
import { AssertionIssuer } from '../src/assertions/assertion-issuer.ts';
import type { SignedAssertion } from '../src/assertions/assertion-issuer.ts';
import type { Principal } from '../src/auth/principal.ts';

/** The token of an assertion handed out without signing; undefined (a pending signature) when it was not cached. */
function cachedToken(a: SignedAssertion | Promise<SignedAssertion>): string | undefined {
  return a instanceof Promise ? undefined : a.token;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const principal = (): Principal => ({
  type: 'user',
  via: 'api_key',
  orgId: 'o',
  orgSlug: 'acme',
  id: 'u1',
  username: 'alice',
  email: 'alice@acme.test',
  displayName: 'Alice',
  orgRole: 'member',
  instanceAdmin: false,
  teams: [{ name: 'vision', role: 'admin' }],
  keyId: 'k1',
});

describe('assertion signing keys', () => {
  let database: Database<SigningKeysTables>;
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = () => now;
  const box = new SecretBox('s'.repeat(64));
  let repo: SigningKeysRepository;

  before(async () => {
    database = openDatabase<SigningKeysTables>('sqlite::memory:');
    await migrateToLatest(database);
    repo = new SigningKeysRepository(database.db);
  });
  after(() => database.close());

  const service = () => new SigningKeyService(repo, box, { rotationMs: 30 * DAY, prepublishMs: HOUR, overlapMs: DAY, reloadMs: 0 }, null, clock);
  const jwks = (s: SigningKeyService) => JSON.parse(s.jwksJson().toString()) as JSONWebKeySet;

  test('the first start makes a key; the private half is sealed; a second instance uses the same key', async () => {
    const a = service();
    await a.start();
    const rows = await database.db.selectFrom('signing_keys').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.ok(!rows[0]!.private_jwk_sealed.includes('"d"'), 'the private key is not stored in the clear');
    assert.ok(rows[0]!.private_jwk_sealed.startsWith('v1.'));
    assert.equal(jwks(a).keys.length, 1);
    assert.equal(jwks(a).keys[0]!.d, undefined, 'the JWKS holds public keys only');
    const b = service();
    await b.start();
    assert.equal(b.current().kid, a.current().kid);
    // Another secret key cannot open it.
    const wrong = new SigningKeyService(repo, new SecretBox('t'.repeat(64)), { rotationMs: 0, reloadMs: 0 }, null, clock);
    await assert.rejects(wrong.start());
  });

  test('rotation: the successor is published before it signs, and the old key stays published after', async () => {
    const s = service();
    await s.start();
    const first = s.current().kid;
    const issuer = new AssertionIssuer(s, { issuer: 'https://gw.test', audience: 'https://api.test', ttlSeconds: 60 }, clock);
    const oldToken = (await issuer.signedFor(principal(), null)).token;
    const verifierKeysBefore = createLocalJWKSet(jwks(s));

    now += 30 * DAY + 1000;
    await s.refresh();
    assert.equal(s.current().kid, first, 'still signing with the old key during prepublication');
    const published = jwks(s).keys.map((k) => k.kid);
    assert.equal(published.length, 2, 'successor published');
    const next = published.find((k) => k !== first)!;

    // A verifier that fetched the JWKS now keeps working after the switch.
    const verifierKeysDuring = createLocalJWKSet(jwks(s));
    now += HOUR + 1000;
    assert.equal(s.current().kid, next, 'the successor signs once its prepublication is over');
    const p2 = principal();
    const newToken = (await issuer.signedFor(p2, null)).token;
    assert.equal(decodeProtectedHeader(newToken).kid, next);
    await jwtVerify(newToken, verifierKeysDuring, { issuer: 'https://gw.test', audience: 'https://api.test', currentDate: new Date(now) });
    // The old key set cannot verify the new key (that is why it is prepublished).
    await assert.rejects(jwtVerify(newToken, verifierKeysBefore, { currentDate: new Date(now) }));

    await s.refresh();
    const afterSwitch = jwks(s).keys.map((k) => k.kid);
    assert.deepEqual(afterSwitch.sort(), [first, next].sort(), 'current + previous published');
    await jwtVerify(oldToken, createLocalJWKSet(jwks(s)), { currentDate: new Date(Date.parse('2030-01-01T00:00:30Z')) });

    now += DAY + 1000;
    await s.refresh();
    assert.deepEqual(jwks(s).keys.map((k) => k.kid), [next], 'the retired key leaves after the overlap');
  });

  test('assertions are cached per principal and attributed user until shortly before they expire', async () => {
    const s = service();
    await s.start();
    const issuer = new AssertionIssuer(s, { issuer: 'https://gw.test', audience: 'https://api.test', ttlSeconds: 60 }, clock);
    const p = principal();
    const a1 = (await issuer.signedFor(p, null)).token;
    assert.equal(cachedToken(issuer.signedFor(p, null)), a1, 'a cached assertion is returned synchronously');
    const bob = { id: 'u2', username: 'bob', email: 'bob@acme.test' };
    const withBob = (await issuer.signedFor(p, bob)).token;
    assert.notEqual(withBob, a1);
    const { payload } = await jwtVerify(withBob, createLocalJWKSet(jwks(s)), { currentDate: new Date(now) });
    assert.equal(payload.attributed_user, 'bob');
    assert.deepEqual(payload.team_roles, { vision: 'admin' });
    now += 40_000;
    assert.equal(cachedToken(issuer.signedFor(p, null)), a1, 'reused at 40 s of 60');
    now += 10_000;
    const a2 = (await issuer.signedFor(p, null)).token;
    assert.notEqual(a2, a1, 'renewed in the last quarter of its life');
    assert.notEqual((await issuer.signedFor(principal(), null)).token, undefined, 'another Principal object (changed identity) signs anew');
  });
});
