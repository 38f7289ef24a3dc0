/**
 * Issue 16, the attack pass: an attacker holding a valid SCIM token of organization B (or a malicious
 * IdP) tries to break SCIM. Every probe here is one that must fail cleanly: a 4xx in RFC 7644's shape
 * that names the problem, never a 500, nothing half-written, nothing of another organization touched,
 * nobody made an admin or the instance operator, the server alive and well afterwards.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { dialects, sleep, startApp } from './support/app.ts';
import type { TestApp, TestResponse } from './support/app.ts';
import { provisionGroup, provisionUser, scimIdOf, teamMemberIds, userRow } from './support/scim-people.ts';
import { assertScimError, ENTRA_AGENT, GROUP_SCHEMA, PATCH_SCHEMA, scimClientFor, USER_SCHEMA } from './support/scim.ts';
import type { ScimClient } from './support/scim.ts';
import { signIn } from './support/web.ts';

const q = (filter: string) => `filter=${encodeURIComponent(filter)}`;
const patchOp = (...Operations: unknown[]) => ({ schemas: [PATCH_SCHEMA], Operations });

/** Not a 5xx, and when it is an error, in SCIM's shape. */
function assertClean(r: TestResponse, what: string): void {
  assert.ok(r.status < 500, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status >= 400) assertScimError(r, r.status);
}

for (const dialect of dialects()) {
  describe(`SCIM under attack (${dialect})`, () => {
    let app: TestApp;
    const A_DOMAIN = `alpha-abuse-${dialect}.test`;
    const A = { org: `abuse-a-${dialect}`, adminKey: '' };
    const B = { org: `abuse-b-${dialect}`, adminKey: '', admin: '' };
    let scimA: ScimClient;
    let scimB: ScimClient;
    let entraB: ScimClient;
    const operatorEmail = `op@${A_DOMAIN}`;
    let annId = '';
    let victim = { id: '', email: '' };
    let groupId = '';
    const bEmail = (local: string) => `${local}@${B.org}.example`;

    before(async () => {
      app = await startApp(dialect);
      Object.assign(A, await app.bootstrap({ org: A.org, email: operatorEmail }));
      assert.equal((await app.request('POST', '/gateway/v1/orgs', { key: A.adminKey, body: { slug: B.org, name: 'Org B', plan: 'enterprise' } })).status, 201);
      const bAdmin = await app.createUser({ org: B.org, username: `abuse-boss-${dialect}`, role: 'admin' });
      B.adminKey = bAdmin.key;
      B.admin = bAdmin.username;
      scimA = await scimClientFor(app, A.org, A.adminKey, { name: 'a-idp' });
      scimB = await scimClientFor(app, B.org, B.adminKey, { name: 'b-idp' });
      entraB = { ...scimB, request: (m, p, body, h) => scimB.request(m, p, body, { 'user-agent': ENTRA_AGENT, ...h }) };
      annId = (await provisionUser(scimA, `ann@${A_DOMAIN}`)).id;
      victim = { email: bEmail('victim'), id: (await provisionUser(scimB, bEmail('victim'))).id };
      groupId = (await provisionGroup(scimB, 'Targets', [victim.id])).id;
    });
    after(() => app.close());

    /** The server still answers properly (after a probe that might have hurt it). */
    async function stillWell(): Promise<void> {
      const r = await scimB.request('GET', `/Users/${victim.id}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.userName, victim.email);
    }

    test('oversized bodies: over 1 MB → 413, nothing created', async () => {
      const tooLarge = (r: TestResponse) => assertScimError(r, 413);
      tooLarge(await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail('huge'), nickName: 'x'.repeat(1_100_000) }));
      assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "${bEmail('huge')}"`)}`)).body.totalResults, 0);
      tooLarge(await scimB.request('PATCH', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: Array.from({ length: 30_000 }, () => ({ value: randomUUID(), display: 'x'.repeat(10) })) })));
      assert.deepEqual(await teamMemberIds(app, groupId), [victim.id]);
      // Without a valid token: a body under the limit is refused 401 (it is not parsed), one over it 413 by its length alone.
      for (const authorization of ['Bearer tgscim-' + 'A'.repeat(40), '']) {
        assertScimError(await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail('anon'), nickName: 'x'.repeat(900_000) }, { authorization }), 401);
        const big = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail('anon'), nickName: 'x'.repeat(2_000_000) }, { authorization });
        assert.ok(big.status === 401 || big.status === 413, big.text);
        assertScimError(big, big.status);
      }
      await stillWell();
    });

    test('deeply nested bodies: a clear 4xx (or the nesting dropped), never a 500; the server lives on', async () => {
      const deep = (n: number, leaf: string) => '{"a":'.repeat(n) + leaf + '}'.repeat(n);
      const deepArr = (n: number) => '['.repeat(n) + ']'.repeat(n);
      const probes: Array<[string, string, string]> = [
        ['POST', '/Users', `{"schemas":["${USER_SCHEMA}"],"userName":"${bEmail('deep1')}","name":${deep(20_000, '"x"')}}`],
        ['POST', '/Users', `{"schemas":["${USER_SCHEMA}"],"userName":"${bEmail('deep2')}","nickName":${deepArr(100_000)}}`],
        ['POST', '/Users', `{"schemas":["${USER_SCHEMA}"],"userName":"${bEmail('deep3')}","emails":[${deep(20_000, '1')}]}`],
        ['PATCH', `/Users/${victim.id}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","value":${deep(20_000, '"x"')}}]}`],
        ['PATCH', `/Users/${victim.id}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","path":"name","value":${deep(20_000, '"x"')}}]}`],
        ['PATCH', `/Groups/${groupId}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"add","path":"members","value":${deepArr(100_000)}}]}`],
        ['POST', '/Groups', `{"schemas":["${GROUP_SCHEMA}"],"displayName":"Deep","members":[${deep(20_000, '"x"')}]}`],
      ];
      for (const [method, path, body] of probes) {
        const r = await scimB.request(method, path, body);
        assertClean(r, `${method} ${path} nested`);
      }
      assert.equal((await userRow(app, victim.id))?.email, victim.email);
      assert.deepEqual(await teamMemberIds(app, groupId), [victim.id]);
      await stillWell();
    });

    test('bodies that are not SCIM messages: invalid JSON, arrays, strings, the wrong content type → 400, nothing created', async () => {
      assertScimError(await scimB.request('POST', '/Users', '{"userName": '), 400, 'invalidSyntax');
      for (const body of ['[]', '"x"', 'null', '42', '{}']) assertScimError(await scimB.request('POST', '/Users', body), 400);
      for (const body of ['[]', '{}', `{"schemas":["${PATCH_SCHEMA}"]}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":"replace"}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[null]}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"explode","path":"active","value":false}]}`, `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"path":"active","value":false}]}`]) {
        const r = await scimB.request('PATCH', `/Users/${victim.id}`, body);
        assertScimError(r, 400);
      }
      const plain = await scimB.request('POST', '/Users', JSON.stringify({ schemas: [USER_SCHEMA], userName: bEmail('plain') }), { 'content-type': 'text/plain' });
      assert.ok(plain.status === 400 || plain.status === 415, plain.text);
      assertScimError(plain, plain.status);
      assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "${bEmail('plain')}"`)}`)).body.totalResults, 0);
      assert.equal((await userRow(app, victim.id))?.status, 'active');
    });

    test('pagination: huge, negative, fractional, duplicated parameters', async () => {
      for (const resource of ['Users', 'Groups']) {
        // Numbers beyond any page: lowered to the limit (or, past what a number holds exactly, a 400 that says so).
        for (const count of ['1000000000000', '201', '99999999999999999999999']) {
          const r = await scimB.request('GET', `/${resource}?count=${count}`);
          if (r.status === 400 && count.length > 15) {
            assertScimError(r, 400, 'invalidValue');
            continue;
          }
          assert.equal(r.status, 200, `count=${count}: ${r.text}`);
          assert.ok(r.body.itemsPerPage <= 200 && r.body.Resources.length <= 200, r.text.slice(0, 200));
        }
        // RFC 7644 §3.4.2.4: a negative count is 0, a startIndex below 1 is 1.
        const neg = await scimB.request('GET', `/${resource}?count=-5`);
        assert.equal(neg.status, 200, neg.text);
        assert.deepEqual(neg.body.Resources, []);
        for (const start of ['-10', '0', '-99999999999999999999']) {
          const r = await scimB.request('GET', `/${resource}?startIndex=${start}&count=1`);
          if (r.status === 400 && start.length > 15) {
            assertScimError(r, 400, 'invalidValue');
            continue;
          }
          assert.equal(r.status, 200, `startIndex=${start}: ${r.text}`);
          assert.equal(r.body.startIndex, 1, r.text);
        }
        // Past the end, even past what a database OFFSET takes: an empty page.
        for (const start of ['99999999999999999999', '9223372036854775807', '2147483648', '999999999999999']) {
          const r = await scimB.request('GET', `/${resource}?startIndex=${start}`);
          if (r.status === 400 && start.length > 15) {
            assertScimError(r, 400, 'invalidValue');
            continue;
          }
          assert.equal(r.status, 200, `startIndex=${start}: ${r.text}`);
          assert.deepEqual(r.body.Resources, [], r.text);
          assert.ok(Number.isInteger(r.body.totalResults) && r.body.totalResults > 0, r.text);
        }
        for (const bad of ['count=abc', 'count=1.5', 'startIndex=abc', 'startIndex=2.5', 'count=0x10', 'count=', 'count=1e2']) {
          const r = await scimB.request('GET', `/${resource}?${bad}`);
          assertClean(r, bad);
          if (r.status !== 200) assertScimError(r, 400, 'invalidValue');
        }
        for (const dup of ['startIndex=1&startIndex=2', 'count=1&count=2', `${q('userName eq "x"')}&${q('userName eq "y"')}`, `${q('displayName eq "x"')}&${q('displayName eq "y"')}`, 'attributes=userName&attributes=id', 'excludedAttributes=members&excludedAttributes=members', 'startIndex[]=1', 'count[a]=1']) {
          assertClean(await scimB.request('GET', `/${resource}?${dup}`), `${resource}?${dup}`);
        }
      }
    });

    test('filter injection: quotes, backslashes, SQL and LIKE metacharacters find nothing; malformed filters → 400 invalidFilter', async () => {
      const findsNothing = [
        'userName eq "x\\" or userName pr or userName eq \\"x"',
        `userName eq "' OR '1'='1"`,
        `userName eq "x'); DROP TABLE users; --"`,
        'userName eq "%"',
        'userName eq "%@%"',
        'userName eq "_"',
        `userName eq "_ictim@${B.org}.example"`,
        `userName eq "victim@${B.org}%"`,
        `userName eq "VICTIM@${B.org}.EXAMPLE_"`,
        'userName eq "\\\\"',
        'userName eq "\\\\%"',
        'externalId eq "%"',
        'externalId eq "ext-%"',
        'emails.value eq "%"',
        'emails[type eq "work"].value eq "%"',
        'id eq "%"',
        `id eq "' OR 1=1 --"`,
        'id eq "not-a-uuid"',
        `userName eq "${'a'.repeat(10_000)}"`,
        'userName eq "a\u0000b"',
        'externalId eq "a\u0000"',
      ];
      for (const f of findsNothing) {
        const r = await scimB.request('GET', `/Users?${q(f)}`);
        assertClean(r, f.slice(0, 80));
        if (r.status === 200) assert.equal(r.body.totalResults, 0, `${f.slice(0, 80)}: ${r.text.slice(0, 300)}`);
        else assertScimError(r, 400);
      }
      for (const f of ['displayName eq "%"', 'displayName eq "_argets"', 'displayName eq "T%"', `displayName eq "' OR '1'='1"`, 'externalId eq "%"', 'displayName eq "a\u0000"', `displayName eq "${'a'.repeat(10_000)}"`]) {
        const r = await scimB.request('GET', `/Groups?${q(f)}`);
        assertClean(r, f.slice(0, 80));
        if (r.status === 200) assert.equal(r.body.totalResults, 0, `${f.slice(0, 80)}: ${r.text.slice(0, 300)}`);
      }
      // Exactness survives the escaping: the real values still match.
      assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "${victim.email.toUpperCase()}"`)}`)).body.totalResults, 1);
      assert.equal((await scimB.request('GET', `/Groups?${q('displayName eq "targets"')}`)).body.totalResults, 1);

      const invalid = [
        'userName co "a"',
        'userName sw "v"',
        'userName pr',
        'userName gt "a"',
        `userName eq "${victim.email}" or userName eq "x"`,
        `not (userName eq "${victim.email}")`,
        'password eq "x"',
        'meta.created gt "2020-01-01"',
        'active eq true',
        'emails[type eq "work" or value pr].value eq "x"',
        'userName eq',
        'eq "x"',
        'userName eq "unterminated',
        '(((((',
        // Long ones, kept under the server's 16 KB request line (past it, Node answers 431 before trackgate sees anything).
        '('.repeat(1500) + 'userName eq "x"' + ')'.repeat(1500),
        Array.from({ length: 250 }, () => 'userName eq "x"').join(' and '),
        Array.from({ length: 250 }, () => 'userName eq "x"').join(' or '),
        '"' + '\\'.repeat(3000) + '"',
      ];
      for (const f of invalid) {
        const r = await scimB.request('GET', `/Users?${q(f)}`);
        // A long `and` chain of one supported comparison may be answered; every other one is a 400 invalidFilter.
        if (r.status === 200 && / and /.test(f) && !/ or /.test(f)) {
          assert.equal(r.body.totalResults, 0);
          continue;
        }
        assertScimError(r, 400, 'invalidFilter');
      }
      // Past 16 KB of request line: Node's HTTP server answers 431 itself (in the API's error shape), nothing reaches SCIM.
      const huge = await scimB.request('GET', `/Users?${q(`userName eq "${'%'.repeat(8000)}"`)}`);
      assert.equal(huge.status, 431, huge.text);
      await stillWell();
    });

    test('PATCH paths and keys that reach for prototypes: refused or dropped, nothing polluted', async () => {
      const before = await scimB.request('GET', `/Users/${victim.id}`);
      const probes = [
        { op: 'add', path: '__proto__', value: { polluted: 'yes', active: false } },
        { op: 'add', path: '__proto__.polluted', value: 'yes' },
        { op: 'replace', path: 'constructor.prototype.polluted', value: 'yes' },
        { op: 'replace', path: 'constructor.prototype', value: { polluted: 'yes' } },
        { op: 'replace', path: 'name.__proto__.polluted', value: 'yes' },
        { op: 'replace', path: 'emails[__proto__ eq "x"].value', value: 'yes' },
        { op: 'replace', path: 'emails[type eq "work"].__proto__', value: { polluted: 'yes' } },
        { op: 'replace', path: 'toString', value: 'yes' },
        { op: 'replace', path: 'hasOwnProperty', value: 'yes' },
      ];
      for (const op of probes) {
        const r = await scimB.request('PATCH', `/Users/${victim.id}`, patchOp(op));
        assertClean(r, JSON.stringify(op));
      }
      // Pathless values parsed from JSON carry "__proto__" as an own key.
      for (const body of [
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","value":{"__proto__":{"polluted":"yes","active":false}}}]}`,
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","value":{"constructor":{"prototype":{"polluted":"yes"}}}}]}`,
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","value":{"name":{"__proto__":{"polluted":"yes"}}}}]}`,
        `{"schemas":["${PATCH_SCHEMA}"],"__proto__":{"Operations":[{"op":"replace","value":{"active":false}}]}}`,
      ]) {
        assertClean(await scimB.request('PATCH', `/Users/${victim.id}`, body), body);
      }
      const groupBodies = [
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"add","path":"__proto__","value":{"polluted":"yes"}}]}`,
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"add","path":"members","value":[{"value":"${victim.id}","__proto__":{"polluted":"yes"}}]}]}`,
        `{"schemas":["${PATCH_SCHEMA}"],"Operations":[{"op":"replace","value":{"__proto__":{"displayName":"Owned"}}}]}`,
      ];
      for (const body of groupBodies) assertClean(await scimB.request('PATCH', `/Groups/${groupId}`, body), body);
      for (const body of [
        `{"schemas":["${USER_SCHEMA}"],"userName":"${bEmail('proto1')}","__proto__":{"active":false,"polluted":"yes","roles":[{"value":"admin"}]}}`,
        `{"schemas":["${USER_SCHEMA}"],"userName":"${bEmail('proto2')}","constructor":{"prototype":{"polluted":"yes"}}}`,
      ]) {
        assertClean(await scimB.request('POST', '/Users', body), body);
      }
      // Nothing changed of the victim (the forbidden active:false rode on __proto__), nothing grew a "polluted".
      const after = await scimB.request('GET', `/Users/${victim.id}`);
      assert.equal(after.body.active, true, after.text);
      assert.equal(after.body.userName, before.body.userName);
      for (const r of [after, await scimB.request('GET', `/Groups/${groupId}`), await scimB.request('GET', '/Users?count=5'), await scimA.request('GET', `/Users/${annId}`), await scimB.request('GET', '/ServiceProviderConfig')]) {
        assert.ok(!r.text.includes('polluted'), r.text.slice(0, 500));
      }
      assert.equal((await scimB.request('GET', `/Groups/${groupId}`)).body.displayName, 'Targets');
      const me = await app.request('GET', '/gateway/v1/me', { key: B.adminKey });
      assert.ok(!me.text.includes('polluted'), me.text);
      for (const local of ['proto1', 'proto2']) {
        const r = await scimB.request('GET', `/Users?${q(`userName eq "${bEmail(local)}"`)}`);
        if (r.body.totalResults) {
          assert.equal(r.body.Resources[0].active, true, r.text);
          assert.equal((await userRow(app, r.body.Resources[0].id))?.role, 'member');
        }
      }
    });

    test('userName changes to someone else\'s email (another org\'s, the operator\'s, a colleague\'s) → 409 uniqueness, nothing changes', async () => {
      const colleague = await provisionUser(scimB, bEmail('colleague'));
      for (const target of [`ann@${A_DOMAIN}`, operatorEmail, operatorEmail.toUpperCase(), bEmail('colleague'), ` ${bEmail('colleague')} `, bEmail(B.admin)]) {
        for (const [label, send] of [
          ['PATCH path', () => scimB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'replace', path: 'userName', value: target }))],
          ['PATCH pathless', () => entraB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'Replace', value: { userName: target } }))],
          ['PATCH emails', () => entraB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'Replace', path: 'emails[type eq "work"].value', value: target }))],
          ['PUT', () => scimB.request('PUT', `/Users/${victim.id}`, { schemas: [USER_SCHEMA], userName: target, emails: [{ value: target, type: 'work', primary: true }], active: true })],
        ] as const) {
          const r = await send();
          // 409, or 400 for a value that is no email (the spaces); an emails change may also be refused otherwise or ignored (the database is checked below).
          const allowed = label === 'PATCH emails' ? [200, 400, 409] : target.trim() === target ? [409] : [400, 409];
          assert.ok(allowed.includes(r.status), `${label} → ${target}: ${r.status} ${r.text}`);
          if (r.status !== 200) assertScimError(r, r.status);
          assert.ok(!r.text.includes(A.org), `${label}: names org A: ${r.text}`);
        }
      }
      assert.equal((await userRow(app, victim.id))?.email, victim.email);
      assert.equal((await userRow(app, colleague.id))?.email, bEmail('colleague'));
      // The operator is untouched, still the operator.
      const op = await scimA.request('GET', `/Users/${await scimIdOf(scimA, operatorEmail)}`);
      assert.equal(op.body.userName, operatorEmail);
    });

    test('nobody becomes an admin or the instance operator through SCIM (roles, unknown attributes, extensions)', async () => {
      const created = await scimB.request('POST', '/Users', {
        schemas: [USER_SCHEMA, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
        userName: bEmail('climber'),
        roles: [{ value: 'admin', primary: true }, { value: 'instance_admin' }],
        role: 'admin',
        instance_admin: true,
        instanceAdmin: 1,
        userType: 'Admin',
        entitlements: [{ value: 'operator' }],
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: '1', organization: A.org },
        'urn:trackgate:params:scim:schemas:extension:2.0:User': { role: 'admin', instance_admin: true },
      });
      assert.equal(created.status, 201, created.text);
      const id = created.body.id;
      for (const op of [
        { op: 'add', path: 'roles', value: [{ value: 'admin' }] },
        { op: 'replace', path: 'roles[primary eq true].value', value: 'admin' },
        { op: 'replace', value: { role: 'admin', instance_admin: true, roles: [{ value: 'admin' }], userType: 'Admin' } },
        { op: 'Add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager', value: [{ value: victim.id }] },
        { op: 'replace', path: 'instance_admin', value: true },
        { op: 'replace', path: 'role', value: 'admin' },
        { op: 'replace', path: 'groups', value: [{ value: groupId }] },
      ]) {
        const r = await scimB.request('PATCH', `/Users/${id}`, patchOp(op));
        assertClean(r, JSON.stringify(op));
      }
      assertClean(await scimB.request('PUT', `/Users/${id}`, { schemas: [USER_SCHEMA], userName: bEmail('climber'), roles: [{ value: 'admin' }], instance_admin: true, role: 'admin', active: true }), 'PUT roles');
      const row = await userRow(app, id);
      assert.equal(row?.role, 'member');
      assert.equal(row?.instance_admin, 0);
      assert.equal(row?.org_id, (await userRow(app, victim.id))?.org_id, 'still in org B');
      const r = await scimB.request('GET', `/Users/${id}`);
      assert.equal(r.body.roles, undefined, r.text);
      // groups is read-only: the PATCH above did not put them in the team.
      assert.ok(!(await teamMemberIds(app, groupId)).includes(id));
    });

    test('values out of bounds: a 300-character userName, NUL characters, non-emails, huge names → 400 invalidValue, nothing written', async () => {
      const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}@${'d'.repeat(60)}.${'e'.repeat(50)}.example`;
      assert.ok(long.length >= 300);
      const bad: Array<Record<string, unknown>> = [
        { userName: long },
        { userName: `nul\u0000@${B.org}.example` },
        { userName: 'not-an-email' },
        { userName: '' },
        { userName: 42 },
        { userName: [bEmail('arr')] },
        { userName: { value: bEmail('obj') } },
        { userName: null },
        {},
        { userName: `@${B.org}.example` },
        { userName: bEmail('ok1'), displayName: 'Nul\u0000Name' },
        { userName: bEmail('ok2'), name: { givenName: 'G\u0000', familyName: 'F' } },
        { userName: bEmail('ok3'), externalId: 'ext\u0000' },
        { userName: bEmail('ok4'), active: 'maybe' },
        { userName: bEmail('ok5'), name: 'not an object' },
        { userName: bEmail('ok6'), emails: 'x' },
      ];
      for (const body of bad) {
        const r = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], ...body });
        assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 120)}: ${r.status} ${r.text}`);
        assertScimError(r, 400);
      }
      const count = await sql<{ n: number }>`select count(*) as n from users where email like ${`ok_@${B.org}.example`} or email like ${'%nul%'}`.execute(app.gw.core.database.db);
      assert.equal(Number(count.rows[0]!.n), 0, 'nothing half-written');
      // The same through PATCH and PUT on an existing person.
      for (const op of [
        { op: 'replace', path: 'userName', value: long },
        { op: 'replace', path: 'userName', value: `vi\u0000ctim@${B.org}.example` },
        { op: 'replace', path: 'displayName', value: 'x\u0000' },
        { op: 'replace', path: 'name.givenName', value: 'x\u0000' },
        { op: 'replace', path: 'externalId', value: 'x\u0000' },
        { op: 'replace', path: 'userName', value: 'not-an-email' },
        { op: 'remove', path: 'userName' },
        { op: 'replace', path: 'active', value: 'maybe' },
        { op: 'replace', path: 'active', value: 0 },
        { op: 'replace', path: 'id', value: randomUUID() },
        { op: 'replace', path: 'meta.created', value: '2000-01-01T00:00:00Z' },
      ]) {
        const r = await scimB.request('PATCH', `/Users/${victim.id}`, patchOp(op));
        assert.equal(r.status, 400, `${JSON.stringify(op).slice(0, 120)}: ${r.status} ${r.text}`);
        assertScimError(r, 400);
      }
      const row = await userRow(app, victim.id);
      assert.equal(row?.email, victim.email);
      assert.equal(row?.status, 'active');
      assert.ok(!row?.display_name.includes('\u0000'));
      // A name beyond what the rest of trackgate takes (200 characters): refused, or kept within the bound.
      const huge = await scimB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'replace', path: 'displayName', value: 'N'.repeat(10_000) }));
      assertClean(huge, 'displayName of 10 000');
      assert.ok(((await userRow(app, victim.id))?.display_name.length ?? 0) <= 200, `display_name of ${(await userRow(app, victim.id))?.display_name.length} characters stored`);
      const hugeGroup = await scimB.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'G'.repeat(10_000) });
      assertClean(hugeGroup, 'group displayName of 10 000');
      const nulGroup = await scimB.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Nul\u0000Group' });
      assert.equal(nulGroup.status, 400, nulGroup.text);
    });

    test('member lists of 10 000 ids: unknown ones → 400 invalidValue quickly, nothing changed; 10 000 copies of one id → that member once', async () => {
      const started = Date.now();
      const unknown = await scimB.request('PATCH', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: Array.from({ length: 10_000 }, () => ({ value: randomUUID() })) }));
      assertScimError(unknown, 400, 'invalidValue');
      assert.ok(unknown.text.length < 10_000, 'the detail does not echo 10 000 ids');
      const replace = await scimB.request('PATCH', `/Groups/${groupId}`, patchOp({ op: 'replace', path: 'members', value: [{ value: victim.id }, ...Array.from({ length: 9_999 }, () => ({ value: randomUUID() }))] }));
      assertScimError(replace, 400, 'invalidValue');
      const post = await scimB.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Ten thousand', members: Array.from({ length: 10_000 }, () => ({ value: randomUUID() })) });
      assertScimError(post, 400, 'invalidValue');
      assert.equal((await scimB.request('GET', `/Groups?${q('displayName eq "Ten thousand"')}`)).body.totalResults, 0);
      const ms = Date.now() - started;
      assert.ok(ms < 20_000, `three 10 000-member requests took ${ms} ms`);
      assert.deepEqual(await teamMemberIds(app, groupId), [victim.id]);

      const other = await provisionUser(scimB, bEmail('copies'));
      const copies = await scimB.request('PATCH', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: Array.from({ length: 10_000 }, () => ({ value: other.id })) }));
      assertClean(copies, '10 000 copies');
      if (copies.status === 204) assert.deepEqual(await teamMemberIds(app, groupId), [victim.id, other.id].sort());
      else assert.deepEqual(await teamMemberIds(app, groupId), [victim.id]);
      // 10 000 operations in one PATCH.
      const ops = await scimB.request('PATCH', `/Groups/${groupId}`, patchOp(...Array.from({ length: 10_000 }, (_, i) => ({ op: i % 2 ? 'remove' : 'add', path: 'members', value: [{ value: other.id }] }))));
      assertClean(ops, '10 000 operations');
      await stillWell();
    });

    test('concurrent PATCHes of one user: every answer 200, no 500, the result is one request\'s whole change', async () => {
      const u = await provisionUser(scimB, bEmail('racer'));
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          scimB.request('PATCH', `/Users/${u.id}`, patchOp({ op: 'replace', path: 'displayName', value: `Racer ${i}` }, { op: 'replace', path: 'name.givenName', value: `G${i}` }, { op: 'replace', path: 'externalId', value: `race-${i}` })),
        ),
      );
      for (const r of answers) assert.equal(r.status, 200, r.text);
      const final = await scimB.request('GET', `/Users/${u.id}`);
      const n = /^Racer (\d+)$/.exec(final.body.displayName)?.[1];
      assert.ok(n !== undefined, final.text);
      assert.equal(final.body.name.givenName, `G${n}`, `half of one request and half of another: ${final.text}`);
      assert.equal(final.body.externalId, `race-${n}`, final.text);
    });

    test('concurrent activation flips of a person with keys: no 500; the end state is consistent; keys revoked by any deactivation stay revoked', async () => {
      const made = await app.createUser({ org: B.org, username: `flipper-${dialect}` });
      const id = await scimIdOf(scimB, bEmail(`flipper-${dialect}`));
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => scimB.request('PATCH', `/Users/${id}`, patchOp({ op: 'replace', path: 'active', value: i % 2 === 0 }))));
      for (const r of answers) assert.equal(r.status, 200, r.text);
      const row = await userRow(app, id);
      const scim = await scimB.request('GET', `/Users/${id}`);
      assert.equal(scim.body.active, row?.status === 'active');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: made.key })).status, 401);
    });

    test('concurrent member additions to one group: every one is kept (no lost update), no 500', async () => {
      const g = await provisionGroup(scimB, 'Crowd');
      const people = await Promise.all(Array.from({ length: 12 }, (_, i) => provisionUser(scimB, bEmail(`crowd${i}`))));
      const answers = await Promise.all(people.map((p) => entraB.request('PATCH', `/Groups/${g.id}`, patchOp({ op: 'Add', path: 'members', value: [{ value: p.id }] }))));
      for (const r of answers) assert.equal(r.status, 204, r.text);
      assert.deepEqual(await teamMemberIds(app, g.id), people.map((p) => p.id).sort());
      // And removals alongside additions, in both removal forms.
      const extra = await provisionUser(scimB, bEmail('crowd-extra'));
      const mixed = await Promise.all([
        ...people.slice(0, 4).map((p) => scimB.request('PATCH', `/Groups/${g.id}`, patchOp({ op: 'remove', path: `members[value eq "${p.id}"]` }))),
        ...people.slice(4, 8).map((p) => entraB.request('PATCH', `/Groups/${g.id}`, patchOp({ op: 'Remove', path: 'members', value: [{ value: p.id }] }))),
        scimB.request('PATCH', `/Groups/${g.id}`, patchOp({ op: 'add', path: 'members', value: [{ value: extra.id }] })),
      ]);
      for (const r of mixed) assert.equal(r.status, 204, r.text);
      assert.deepEqual(await teamMemberIds(app, g.id), [...people.slice(8).map((p) => p.id), extra.id].sort());
    });

    test('concurrent creations of one userName, one externalId, one displayName: exactly one 201, the rest 409', async () => {
      const users = await Promise.all(Array.from({ length: 8 }, () => scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail('twin'), externalId: 'twin-ext' })));
      assert.deepEqual(users.map((r) => r.status).sort(), [201, ...Array(7).fill(409)], users.map((r) => r.text).join('\n'));
      for (const r of users.filter((x) => x.status === 409)) assertScimError(r, 409, 'uniqueness');
      const ext = await Promise.all(Array.from({ length: 6 }, (_, i) => scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail(`ext-twin${i}`), externalId: 'shared-ext-race' })));
      assert.deepEqual(ext.map((r) => r.status).sort(), [201, ...Array(5).fill(409)], ext.map((r) => r.text).join('\n'));
      const groups = await Promise.all(Array.from({ length: 8 }, () => scimB.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Twin Team' })));
      assert.deepEqual(groups.map((r) => r.status).sort(), [201, ...Array(7).fill(409)], groups.map((r) => r.text).join('\n'));
      assert.equal((await scimB.request('GET', `/Groups?${q('displayName eq "Twin Team"')}`)).body.totalResults, 1);
      // An externalId already taken, sequentially: 409, not a unique-index 500.
      const again = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: bEmail('ext-late'), externalId: 'twin-ext' });
      assertScimError(again, 409, 'uniqueness');
      const moved = await scimB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'replace', path: 'externalId', value: 'twin-ext' }));
      assertScimError(moved, 409, 'uniqueness');
    });

    test('DELETE racing PATCH (and DELETE): no 500; the person ends removed, deactivated, not listed; a second DELETE is 404', async () => {
      for (let round = 0; round < 4; round++) {
        const u = await provisionUser(scimB, bEmail(`gone${round}`));
        const [del, patch, del2] = await Promise.all([
          scimB.request('DELETE', `/Users/${u.id}`),
          scimB.request('PATCH', `/Users/${u.id}`, patchOp({ op: 'replace', value: { displayName: 'Still here', active: true } })),
          scimB.request('DELETE', `/Users/${u.id}`),
        ]);
        assert.deepEqual([del.status, del2.status].sort(), [204, 404], `${del.text} ${del2.text}`);
        assert.ok(patch.status === 200 || patch.status === 404, patch.text);
        assertScimError(await scimB.request('GET', `/Users/${u.id}`), 404);
        assertScimError(await scimB.request('PATCH', `/Users/${u.id}`, patchOp({ op: 'replace', path: 'active', value: true })), 404);
        assert.equal((await scimB.request('GET', `/Users?${q(`userName eq "${bEmail(`gone${round}`)}"`)}`)).body.totalResults, 0);
        assert.equal((await userRow(app, u.id))?.status, 'deactivated', 'a PATCH that lost the race did not bring them back');
      }
      // A group deleted while members are added: no 500, gone afterwards, no memberships left behind.
      for (let round = 0; round < 3; round++) {
        const g = await provisionGroup(scimB, `Doomed ${round}`);
        const [del, add] = await Promise.all([scimB.request('DELETE', `/Groups/${g.id}`), scimB.request('PATCH', `/Groups/${g.id}`, patchOp({ op: 'add', path: 'members', value: [{ value: victim.id }] }))]);
        assert.equal(del.status, 204, del.text);
        assert.ok(add.status === 204 || add.status === 404, add.text);
        assertScimError(await scimB.request('GET', `/Groups/${g.id}`), 404);
        assert.deepEqual(await teamMemberIds(app, g.id), []);
      }
    });

    test('DELETE then POST of the same userName revives the account: same id, active, but its keys stay revoked and its teams are not given back', async () => {
      const made = await app.createUser({ org: B.org, username: `phoenix-${dialect}` });
      const email = bEmail(`phoenix-${dialect}`);
      const id = await scimIdOf(scimB, email);
      assert.equal((await scimB.request('PATCH', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: [{ value: id }] }))).status, 204);
      assert.equal((await scimB.request('DELETE', `/Users/${id}`)).status, 204);
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: made.key })).status, 401);
      assert.ok(!(await teamMemberIds(app, groupId)).includes(id));
      const again = await scimB.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: email.toUpperCase(), active: true });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.body.id, id, 'the same account (usernames are never reused)');
      assert.equal(again.body.active, true);
      assert.equal((await userRow(app, id))?.status, 'active');
      assert.equal((await app.request('GET', '/gateway/v1/me', { key: made.key })).status, 401, 'a key revoked by the removal stays revoked');
      assert.ok(!(await teamMemberIds(app, groupId)).includes(id), 'teams are the IdP\'s to give back');
      // Another organization's IdP cannot revive (or take) it.
      assertScimError(await scimA.request('POST', '/Users', { schemas: [USER_SCHEMA], userName: email }), 409, 'uniqueness');
    });

    // todo until key creation checks, under the owner's row lock, that the owner is still active: a creation authenticated just
    // before the deactivation waits for the lock the deactivation holds, then issues a live key the deactivation never saw.
    test('keys made with a session while SCIM deactivates the person: none of them works after reactivation', { todo: 'BUG (keys): KeysService.issue does not re-check the owner under its lock; a key made in the race survives deprovisioning' }, async () => {
      for (let round = 0; round < 3; round++) {
        const email = bEmail(`racer-keys${round}`);
        const u = await provisionUser(scimB, email);
        const browser = await signIn(app, email);
        const session = await browser.request('GET', '/gateway/v1/session', { headers: { accept: 'application/json' } });
        const csrf = (JSON.parse(session.text) as { csrf_token: string }).csrf_token;
        const make = async (i: number) => {
          await sleep(i * 3);
          const r = await browser.request('POST', '/gateway/v1/me/keys', { json: { name: `race-${i}` }, headers: { accept: 'application/json', 'x-csrf-token': csrf } });
          return r.status === 201 ? (JSON.parse(r.text) as { key: string }).key : null;
        };
        const [deactivation, ...made] = await Promise.all([(async () => (await sleep(15), scimB.request('PATCH', `/Users/${u.id}`, patchOp({ op: 'replace', value: { active: false } }))))(), ...Array.from({ length: 12 }, (_, i) => make(i))]);
        assert.equal(deactivation.status, 200, deactivation.text);
        const keys = made.filter((k): k is string => k !== null);
        for (const k of keys) app.keys.add(k);
        assert.equal((await scimB.request('PATCH', `/Users/${u.id}`, patchOp({ op: 'replace', path: 'active', value: 'True' }))).status, 200);
        for (const k of keys) assert.equal((await app.request('GET', '/gateway/v1/me', { key: k })).status, 401, `round ${round}: a key made during the deactivation (${keys.length} of 12 were answered 201) works after reactivation`);
      }
    });

    test('If-Match with another version → 412 and nothing changes; ids that are not ids → 404', async () => {
      const r = await scimB.request('PATCH', `/Users/${victim.id}`, patchOp({ op: 'replace', path: 'displayName', value: 'Stale' }), { 'if-match': 'W/"not-the-version"' });
      assertScimError(r, 412);
      assert.notEqual((await scimB.request('GET', `/Users/${victim.id}`)).body.displayName, 'Stale');
      for (const id of [encodeURIComponent("' OR 1=1 --"), 'not-a-uuid', '%00', 'a'.repeat(8000), encodeURIComponent('../Groups'), '%2e%2e', encodeURIComponent(annId + ' ')]) {
        for (const resource of ['Users', 'Groups']) {
          for (const method of ['GET', 'DELETE', 'PATCH', 'PUT']) {
            const body = method === 'PATCH' ? patchOp({ op: 'replace', path: 'displayName', value: 'x' }) : method === 'PUT' ? { schemas: [resource === 'Users' ? USER_SCHEMA : GROUP_SCHEMA], userName: bEmail('x'), displayName: 'x' } : undefined;
            const res = await scimB.request(method, `/${resource}/${id}`, body);
            assert.ok(res.status === 404 || res.status === 400, `${method} /${resource}/${id.slice(0, 40)}: ${res.status} ${res.text.slice(0, 200)}`);
            assertScimError(res, res.status);
          }
        }
      }
      await stillWell();
    });
  });
}
