/**
 * Entity names and user provisioning across tenants (issue 13).
 *
 * Entity names (users, teams, service accounts) are one namespace on the
 * instance, and the tracking API keys its data by them: a released name stays
 * its organization's (a tombstone), so another organization cannot take it
 * over with whatever the tracking API still holds under it. Names of
 * trackgate's own top-level paths are reserved for every kind of entity.
 *
 * Emails are unique on the instance. Provisioning must not tell an admin of
 * one organization whether an address has an account elsewhere (an email
 * oracle), nor let them squat the addresses of a domain another organization
 * claims through SSO. Over HTTP; the domain is claimed through a real SSO
 * connection to a (jose) IdP.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { RESERVED_ENTITY_NAMES } from '../src/users/entity-names.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { startJoseIdp } from './support/idp/jose-idp.ts';
import type { JoseIdp } from './support/idp/jose-idp.ts';
import { decodeHtml, signIn } from './support/web.ts';

let idp: JoseIdp;
before(async () => {
  idp = await startJoseIdp({ clientId: 'names-spa' });
});
after(async () => {
  await idp.close();
});

test("every first path segment trackgate serves itself (src/http/server.ts) is a reserved entity name", () => {
  const source = readFileSync(new URL('../src/http/server.ts', import.meta.url), 'utf8');
  const sets = [...source.matchAll(/const OWN_(?:EXACT|SEGMENTS) = new Set\(\[([^\]]*)\]\)/g)];
  assert.equal(sets.length, 2, 'server.ts still declares OWN_EXACT and OWN_SEGMENTS');
  const segments = sets.flatMap((m) => [...m[1]!.matchAll(/'\/([^'/]+)'/g)].map((x) => x[1]!));
  assert.ok(segments.length > 10);
  for (const s of segments) assert.ok(RESERVED_ENTITY_NAMES.has(s), `"${s}" is served by trackgate but not reserved as an entity name`);
});

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`entity names and provisioning across organizations (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let operatorKey: string;
    const orgA = `orga-${tag}`;
    const orgB = `orgb-${tag}`;
    const domainA = `alpha-corp-${tag}.example`;
    let adminA: string;
    let carol: string;
    let carolEmail: string;
    const teamB = `team-b-${tag}`;

    async function api(method: string, path: string, key: string, body?: unknown) {
      return app.request(method, `/gateway/v1${path}`, { key, ...(body === undefined ? {} : { body }) });
    }

    before(async () => {
      app = await startApp(dialect, { allowHttpIssuers: true });
      operatorKey = (await app.bootstrap({ org: `op-${tag}` })).adminKey;
      for (const slug of [orgA, orgB]) assert.equal((await api('POST', '/orgs', operatorKey, { slug, name: slug, plan: 'enterprise' })).status, 201);
      adminA = (await app.createUser({ org: orgA, username: `alice-${tag}`, role: 'admin', email: `alice@${domainA}` })).key;
      carolEmail = `carol@orgb-${tag}.example`;
      carol = (await app.createUser({ org: orgB, username: `carol-${tag}`, role: 'admin', email: carolEmail })).key;
      // Org A claims its email domain through its SSO connection.
      const c = await api('POST', `/orgs/${orgA}/sso`, adminA, { issuer: idp.issuer, client_id: 'names-spa', domains: [domainA], jit: false });
      assert.equal(c.status, 201, c.text);
      assert.equal((await api('POST', `/orgs/${orgA}/users`, adminA, { email: `bob@${domainA}`, username: `bob-${tag}` })).status, 201);
      assert.equal((await api('POST', `/orgs/${orgB}/teams`, carol, { name: teamB })).status, 201);
    });
    after(async () => {
      await app?.close();
    });

    test("a deleted service account's name cannot be taken by another organization, as a team, user or service account; its own organization may reuse it", async () => {
      const bsa = `bsa-${tag}`;
      const sa = await api('POST', `/teams/${teamB}/service-accounts`, carol, { name: 'nightly', username: bsa });
      assert.equal(sa.status, 201, sa.text);
      assert.equal((await api('DELETE', `/service-accounts/${sa.body.id}`, carol)).status, 204);

      // Org A's admin tries every kind of entity under the released name.
      const team = await api('POST', `/orgs/${orgA}/teams`, adminA, { name: bsa });
      assert.equal(team.status, 409, team.text);
      assert.equal(team.body.error.code, 'name_taken');
      assert.ok(!team.text.includes(orgB), 'the answer does not name the other organization');
      const user = await api('POST', `/orgs/${orgA}/users`, adminA, { email: `newbsa@${domainA}`, username: bsa });
      assert.equal(user.status, 409, user.text);
      assert.equal(user.body.error.code, 'username_taken');
      const teamA = `team-a-${tag}`;
      assert.equal((await api('POST', `/orgs/${orgA}/teams`, adminA, { name: teamA })).status, 201);
      const saA = await api('POST', `/teams/${teamA}/service-accounts`, adminA, { name: 'squatter', username: bsa });
      assert.equal(saA.status, 409, saA.text);
      assert.equal(saA.body.error.code, 'username_taken');
      // A derived username skips it too: "bsa-<tag>" as a display name gives "bsa-<tag>-2".
      const derived = await api('POST', `/teams/${teamA}/service-accounts`, adminA, { name: bsa });
      assert.equal(derived.status, 201, derived.text);
      assert.notEqual(derived.body.username, bsa);

      // Org B itself may use the name again, as any kind; then it is held, by B, as before.
      const again = await api('POST', `/orgs/${orgB}/teams`, carol, { name: bsa });
      assert.equal(again.status, 201, again.text);
      assert.equal((await api('POST', `/orgs/${orgA}/teams`, adminA, { name: bsa })).status, 409);
      assert.equal((await api('POST', `/orgs/${orgB}/users`, carol, { email: `x@orgb-${tag}.example`, username: bsa })).status, 409, 'a live name is taken, also within its organization');
    });

    test('a deleted service account of one organization can be recreated under its name by the same organization only', async () => {
      const name = `pipeline-${tag}`;
      const first = await api('POST', `/teams/${teamB}/service-accounts`, carol, { name: 'p', username: name });
      assert.equal(first.status, 201, first.text);
      assert.equal((await api('DELETE', `/service-accounts/${first.body.id}`, carol)).status, 204);
      const second = await api('POST', `/teams/${teamB}/service-accounts`, carol, { name: 'p', username: name });
      assert.equal(second.status, 201, second.text);
      assert.equal(second.body.username, name);
    });

    test("trackgate's own path names are refused for every kind of entity, 422 name_reserved naming the reason", async () => {
      const teamA = `team-r-${tag}`;
      assert.equal((await api('POST', `/orgs/${orgA}/teams`, adminA, { name: teamA })).status, 201);
      for (const name of ['gateway', 'auth', 'static', 'metrics', 'healthz', 'readyz', 'login', 'logout', 'settings', 'teams', 'admin', 'oidc', 'scim', 'graphql']) {
        const attempts = [
          await api('POST', `/orgs/${orgA}/teams`, adminA, { name }),
          await api('POST', `/orgs/${orgA}/users`, adminA, { email: `${name}-user@${domainA}`, username: name }),
          await api('POST', `/teams/${teamA}/service-accounts`, adminA, { name: 'x', username: name }),
        ];
        for (const r of attempts) {
          assert.equal(r.status, 422, `${name}: ${r.status} ${r.text}`);
          assert.equal(r.body.error.code, 'name_reserved');
          assert.match(r.body.error.message, new RegExp(`"${name}" is reserved`));
        }
      }
      // A name derived from a display name never lands on a reserved one.
      const derived = await api('POST', `/teams/${teamA}/service-accounts`, adminA, { name: 'Metrics' });
      assert.equal(derived.status, 201, derived.text);
      assert.notEqual(derived.body.username, 'metrics');
      assert.ok(!RESERVED_ENTITY_NAMES.has(derived.body.username));
    });

    test("provisioning an address of a domain another organization claims is refused, 'cannot be used', without naming it — also for a new address, which its owner can then still create", async () => {
      const existing = await api('POST', `/orgs/${orgB}/users`, carol, { email: `bob@${domainA}`, username: `carol2-${tag}` });
      assert.equal(existing.status, 409, existing.text);
      assert.equal(existing.body.error.code, 'email_unavailable');
      assert.match(existing.body.error.message, /^the email bob@\S+ cannot be used/);
      assert.ok(!existing.text.includes(orgA), 'the owner is not named');

      const squat = await api('POST', `/orgs/${orgB}/users`, carol, { email: `newhire@${domainA}`, username: `newhire-b-${tag}` });
      assert.equal(squat.status, 409, squat.text);
      assert.equal(squat.body.error.code, 'email_unavailable', 'an unused address of the claimed domain answers exactly like a used one');
      assert.equal(squat.body.error.message, existing.body.error.message.replace('bob@', 'newhire@'));
      assert.equal((await api('GET', `/orgs/${orgB}/users/newhire-b-${tag}`, carol)).status, 404, 'nothing was created');

      const own = await api('POST', `/orgs/${orgA}/users`, adminA, { email: `newhire@${domainA}`, username: `newhire-${tag}` });
      assert.equal(own.status, 201, own.text);
    });

    test('an address taken in another organization answers like a claimed domain; one taken in the own organization says so; an unclaimed domain is fine', async () => {
      const free = `freemail-${tag}.example`;
      assert.equal((await api('POST', `/orgs/${orgA}/users`, adminA, { email: `dave@${free}`, username: `dave-${tag}` })).status, 201, 'an unclaimed domain is anyone\'s');
      const elsewhere = await api('POST', `/orgs/${orgB}/users`, carol, { email: `dave@${free}`, username: `dave-b-${tag}` });
      assert.equal(elsewhere.status, 409, elsewhere.text);
      assert.equal(elsewhere.body.error.code, 'email_unavailable');
      const claimed = await api('POST', `/orgs/${orgB}/users`, carol, { email: `dave@${domainA}`, username: `dave-b-${tag}` });
      assert.equal(claimed.body.error.code, 'email_unavailable');
      assert.equal(elsewhere.body.error.message.replace(free, 'D'), claimed.body.error.message.replace(domainA, 'D'), 'an account elsewhere and a claimed domain read the same');
      assert.ok(!elsewhere.text.includes(orgA));

      const here = await api('POST', `/orgs/${orgB}/users`, carol, { email: carolEmail, username: `carol3-${tag}` });
      assert.equal(here.status, 409, here.text);
      assert.equal(here.body.error.code, 'email_taken');
      assert.match(here.body.error.message, /already exists in/);
    });

    test("the username is judged before the email: a clash on the name says nothing of the address", async () => {
      const taken = `carol-${tag}`;
      const withTakenEmail = await api('POST', `/orgs/${orgB}/users`, carol, { email: `bob@${domainA}`, username: taken });
      const withFreeEmail = await api('POST', `/orgs/${orgB}/users`, carol, { email: `nobody-${tag}@nowhere.example`, username: taken });
      for (const r of [withTakenEmail, withFreeEmail]) {
        assert.equal(r.status, 409, r.text);
        assert.equal(r.body.error.code, 'username_taken');
      }
      assert.equal(withTakenEmail.body.error.message, withFreeEmail.body.error.message);
    });

    test('the web admin form and the CLI refuse an address of a domain another organization claims', async () => {
      const browser = await signIn(app, carolEmail);
      const r = await browser.submit('/admin', '/admin/users', { email: `webhire@${domainA}`, username: `webhire-${tag}`, role: 'member' });
      assert.equal(r.status, 409, r.text.slice(0, 500));
      const text = decodeHtml(r.text);
      assert.match(text, /cannot be used/);
      assert.ok(!text.includes(orgA));
      assert.equal((await api('GET', `/orgs/${orgB}/users/webhire-${tag}`, carol)).status, 404);

      // `trackgate users create` (its service, as the CLI calls it).
      await assert.rejects(app.createUser({ org: orgB, username: `clihire-${tag}`, email: `clihire@${domainA}` }), (err: { kind?: string; code?: string }) => err.kind === 'conflict' && err.code === 'email_unavailable');
      await app.createUser({ org: orgA, username: `clihire-${tag}`, email: `clihire@${domainA}` });
    });
  });
}
