/**
 * Adding one member to a team from several requests at once (two admins, a retrying client, SSO group
 * sync beside the API): one adds, the others update; none answers 500. On PostgreSQL both transactions
 * used to find no row and the later insert failed on the primary key (found by crash-safety.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

for (const dialect of dialects()) {
  describe(`team members changed concurrently (${dialect})`, () => {
    let app: TestApp;
    let adminKey: string;
    before(async () => {
      app = await startApp(dialect);
      const b = await app.bootstrap({ org: `conc-${dialect}` });
      adminKey = b.adminKey;
      assert.equal((await app.request('POST', `/gateway/v1/orgs/${b.org}/teams`, { key: adminKey, body: { name: `conc-team-${dialect}` } })).status, 201);
      for (let i = 0; i < 5; i++) {
        const r = await app.request('POST', `/gateway/v1/orgs/${b.org}/users`, { key: adminKey, body: { email: `c${i}@conc-${dialect}.test`, username: `c${i}-${dialect}`, role: 'member' } });
        assert.equal(r.status, 201, r.text);
      }
    });
    after(() => app.close());

    test('the same member put by 8 requests at once: one 201, the rest 200, one row', async () => {
      for (let i = 0; i < 5; i++) {
        const user = `c${i}-${dialect}`;
        const answers = await Promise.all(Array.from({ length: 8 }, (_, j) => app.request('PUT', `/gateway/v1/teams/conc-team-${dialect}/members/${user}`, { key: adminKey, body: { role: j % 2 ? 'member' : 'viewer' } })));
        assert.deepEqual(answers.filter((r) => r.status !== 200 && r.status !== 201).map((r) => `${r.status} ${r.text}`), []);
        assert.equal(answers.filter((r) => r.status === 201).length, 1, 'exactly one request added the member');
        const m = await app.request('GET', `/gateway/v1/teams/conc-team-${dialect}/members/${user}`, { key: adminKey });
        assert.equal(m.status, 200, m.text);
      }
    });

    test('puts and removals of one member at once: every answer a 2xx or 404, never a 500', async () => {
      // A put that saw the member, then found its row removed by a concurrent removal that committed
      // meanwhile, adds them back (crash-safety.test.ts met a 500 "not found right after it was written").
      for (let round = 0; round < 10; round++) {
        const user = `c${round % 5}-${dialect}`;
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, j) =>
            j % 2 ? app.request('DELETE', `/gateway/v1/teams/conc-team-${dialect}/members/${user}`, { key: adminKey }) : app.request('PUT', `/gateway/v1/teams/conc-team-${dialect}/members/${user}`, { key: adminKey, body: { role: 'member' } }),
          ),
        );
        assert.deepEqual(answers.filter((r) => ![200, 201, 204, 404].includes(r.status)).map((r) => `${r.status} ${r.text}`), []);
      }
    });
  });
}
