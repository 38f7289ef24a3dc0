/**
 * SCIM white-box review (issue 16): what a read of src/scim found, each as a test that failed before
 * its fix. Over HTTP against the real app, on both databases.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA, assertScimError, scimClientFor } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';

function patch(...ops: unknown[]) {
  return { schemas: [PATCH_SCHEMA], Operations: ops };
}

for (const [runIndex, dialect] of dialects().entries()) {
  describe(`SCIM review (${dialect})`, () => {
    const tag = `${dialect.slice(0, 2)}${runIndex}`;
    let app: TestApp;
    let victim: ScimClient;
    let attacker: ScimClient;

    before(async () => {
      app = await startApp(dialect);
      const a = await app.bootstrap({ org: `rv-victim-${tag}-${randomUUID().slice(0, 6)}` });
      const b = await app.bootstrap({ org: `rv-attack-${tag}-${randomUUID().slice(0, 6)}` });
      victim = await scimClientFor(app, a.org, a.adminKey, { name: 'victim-idp' });
      attacker = await scimClientFor(app, b.org, b.adminKey, { name: 'attacker-idp' });
    });
    after(async () => {
      await app?.close();
    });

    /** Another organization's IdP still provisions as before: a POST without `schemas` (optional in trackgate) is a 201. */
    async function victimStillWorks(what: string): Promise<void> {
      const r = await victim.request('POST', '/Users', { userName: `p-${randomUUID().slice(0, 8)}@victim-${tag}.example`, name: { givenName: 'P', familyName: 'Q' } });
      assert.equal(r.status, 201, `after ${what}: ${r.text}`);
    }

    test('a filter or PATCH path naming __proto__ / constructor / prototype is refused before scimmy parses it (it polluted Object.prototype for every organization)', async () => {
      // scimmy's Filter assigned `__proto__.schemas` onto Object.prototype: every body without its own
      // `schemas` then "had" one, and every organization's POST /Users was refused as invalidSyntax.
      const u = await attacker.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: `a-${tag}@attack-${tag}.example` });
      assert.equal(u.status, 201, u.text);
      const g = await attacker.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: `Attackers ${tag}` });
      assert.equal(g.status, 201, g.text);

      for (const filter of ['__proto__.schemas eq "x"', 'userName eq "a" and __proto__.schemas eq "x"', 'constructor.schemas eq "x"', 'emails[__proto__.schemas eq "x"].value eq "y"', 'Prototype.x eq 1']) {
        const r = await attacker.request('GET', `/Users?filter=${encodeURIComponent(filter)}`);
        assertScimError(r, 400, 'invalidFilter');
        const rg = await attacker.request('GET', `/Groups?filter=${encodeURIComponent(filter)}`);
        assertScimError(rg, 400, 'invalidFilter');
        await victimStillWorks(`filter ${filter}`);
      }
      // The same parser behind PATCH paths: a User's filtered path (scimmy's PatchOp), a Group's member filter.
      const paths: Array<[string, unknown]> = [
        [`/Users/${u.body.id}`, patch({ op: 'replace', path: 'emails[__proto__.schemas eq "x"].value', value: 'z@attack.example' })],
        [`/Users/${u.body.id}`, patch({ op: 'replace', value: { 'emails[__proto__.schemas eq "x"].value': 'z@attack.example' } })],
        [`/Users/${u.body.id}`, patch({ op: 'replace', path: 'emails[type eq "work" and constructor.x eq "y"].value', value: 'z@attack.example' })],
        [`/Groups/${g.body.id}`, patch({ op: 'remove', path: 'members[__proto__.schemas eq "x"]' })],
      ];
      for (const [path, body] of paths) {
        const r = await attacker.request('PATCH', path, body);
        assertScimError(r, 400, 'invalidPath');
        await victimStillWorks(`PATCH ${JSON.stringify(body)}`);
      }
      // A value that merely contains the words is a value like any other.
      const named = await attacker.request('GET', `/Users?filter=${encodeURIComponent('userName eq "constructor.__proto__@attack.example"')}`);
      assert.equal(named.status, 200, named.text);
      assert.equal(named.body.totalResults, 0);
    });
  });
}
