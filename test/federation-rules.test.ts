import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ruleMatches, ruleProblems, subjectMatches } from '../src/federation/trust-rules.ts';
import type { TrustRule } from '../src/federation/trust-rules.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';

const GITHUB = 'https://token.actions.githubusercontent.com';

describe('trust rules: matching (unit)', () => {
  const rule = (r: Partial<TrustRule>): TrustRule => ({ issuer: GITHUB, audience: 'acme', subject: 'repo:acme/train:ref:refs/heads/main', conditions: {}, ...r });
  const claims = (c: Record<string, unknown> = {}) => ({ iss: GITHUB, aud: 'acme', sub: 'repo:acme/train:ref:refs/heads/main', ...c });

  test('the subject: exact, or a prefix before a trailing *', () => {
    assert.ok(subjectMatches('repo:acme/train:*', 'repo:acme/train:pull_request'));
    assert.ok(!subjectMatches('repo:acme/train:*', 'repo:acme/train-evil:pull_request'));
    assert.ok(subjectMatches('repo:acme/train', 'repo:acme/train'));
    assert.ok(!subjectMatches('repo:acme/train', 'repo:acme/train:x'));
    assert.ok(!subjectMatches('repo:acme/train', 'repo:acme/trai'));
    assert.ok(ruleMatches(rule({ subject: 'repo:acme/*' }), claims({ sub: 'repo:acme/other:ref:refs/heads/x' })));
    assert.ok(!ruleMatches(rule({}), claims({ sub: 'repo:acme/train:ref:refs/heads/dev' })));
    assert.ok(!ruleMatches(rule({}), claims({ sub: 42 })));
  });

  test('issuer exact, audience among aud (a string or an array)', () => {
    assert.ok(ruleMatches(rule({}), claims()));
    assert.ok(!ruleMatches(rule({}), claims({ iss: `${GITHUB}/` })));
    assert.ok(ruleMatches(rule({}), claims({ aud: ['other', 'acme'] })));
    assert.ok(!ruleMatches(rule({}), claims({ aud: ['other'] })));
    assert.ok(!ruleMatches(rule({}), claims({ aud: 'acme-evil' })));
    assert.ok(!ruleMatches(rule({}), claims({ aud: undefined })));
    assert.ok(!ruleMatches(rule({}), claims({ aud: { acme: true } })));
  });

  test('conditions: every one exact; numbers and booleans as written out; absent or objects never match', () => {
    const r = rule({ subject: 'repo:acme/*', conditions: { repository_owner: 'acme', repository_id: '123', environment: 'prod' } });
    assert.ok(ruleMatches(r, claims({ repository_owner: 'acme', repository_id: 123, environment: 'prod' })));
    assert.ok(ruleMatches(r, claims({ repository_owner: 'acme', repository_id: '123', environment: 'prod' })));
    assert.ok(!ruleMatches(r, claims({ repository_owner: 'acme', repository_id: 1234, environment: 'prod' })));
    assert.ok(!ruleMatches(r, claims({ repository_owner: 'acme', repository_id: 123 })), 'a missing claim');
    assert.ok(!ruleMatches(r, claims({ repository_owner: 'ACME', repository_id: 123, environment: 'prod' })), 'case matters');
    assert.ok(!ruleMatches(r, claims({ repository_owner: ['acme'], repository_id: 123, environment: 'prod' })), 'an array is not a string');
    assert.ok(ruleMatches(rule({ conditions: { ok: 'true' } }), claims({ ok: true })));
    assert.ok(!ruleMatches(rule({ conditions: { toString: 'x' } }), claims()), 'inherited properties are not claims');
  });

  test('what a rule may say (ruleProblems)', () => {
    const ok = (r: Partial<TrustRule>) => assert.deepEqual(ruleProblems(rule(r), { allowHttp: false }), []);
    const bad = (r: Partial<TrustRule>, field: string, re: RegExp) => {
      const p = ruleProblems(rule(r), { allowHttp: false });
      assert.ok(p.some((x) => x.field === field && re.test(x.message)), JSON.stringify(p));
    };
    ok({});
    ok({ subject: 'repo:acme/train:*' });
    ok({ subject: 'repo:acme/*' });
    ok({ subject: 'repo:*', conditions: { repository_owner: 'acme' } });
    ok({ issuer: 'https://gitlab.com', subject: 'project_path:acme/*' });
    bad({ issuer: 'https://gitlab.com', subject: 'project_path:acme*' }, 'subject', /GitLab/);
    ok({ issuer: 'https://app.terraform.io', subject: 'organization:acme:*' });
    bad({ issuer: 'https://app.terraform.io', subject: 'organization:acme*' }, 'subject', /Terraform/);
    bad({ subject: 'repo:*' }, 'subject', /every one of its customers/);
    bad({ subject: 'repo:acme*' }, 'subject', /every one of its customers/);
    bad({ subject: '*' }, 'subject', /trusts every token/);
    bad({ issuer: 'https://k8s.example', subject: '*' }, 'subject', /trusts every token/);
    ok({ issuer: 'https://k8s.example', subject: 'system:serviceaccount:ml:*' });
    bad({ subject: 'repo:acme/*/x' }, 'subject', /last character/);
    bad({ issuer: 'http://k8s.example' }, 'issuer', /https/);
    assert.deepEqual(ruleProblems(rule({ issuer: 'http://127.0.0.1:9999' }), { allowHttp: true }), []);
    bad({ issuer: 'not a url' }, 'issuer', /URL/);
    bad({ issuer: 'https://k8s.example?x=1' }, 'issuer', /query/);
    bad({ issuer: 'https://user:pw@k8s.example' }, 'issuer', /credentials/);
    bad({ issuer: 'HTTPS://K8S.example' }, 'issuer', /exactly/);
    bad({ conditions: { sub: 'x' } }, 'conditions', /cannot be a condition/);
    bad({ conditions: { aud: 'x' } }, 'conditions', /cannot be a condition/);
    bad({ conditions: { 'bad claim': 'x' } }, 'conditions', /not a claim name/);
    bad({ conditions: { environment: '' } }, 'conditions', /non-empty/);
  });
});

for (const dialect of dialects()) {
  describe(`trust rules: API (${dialect})`, () => {
    let app: TestApp;
    let org: string;
    let adminKey: string;
    let team: string;
    let teamAdmin: { key: string; username: string };
    let member: { key: string; username: string };
    let outsider: { key: string; username: string };
    let other: { org: string; adminKey: string };

    before(async () => {
      app = await startApp(dialect);
      ({ org, adminKey } = await app.bootstrap());
      other = await app.bootstrap();
      team = `ml-${org}`;
      teamAdmin = await app.createUser({ org, username: `tadmin-${org}` });
      member = await app.createUser({ org, username: `member-${org}` });
      outsider = await app.createUser({ org, username: `outsider-${org}` });
      const t = await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } });
      assert.equal(t.status, 201, t.text);
      for (const [u, role] of [[teamAdmin.username, 'admin'], [member.username, 'member']] as const) {
        const r = await app.request('PUT', `/gateway/v1/teams/${team}/members/${u}`, { key: adminKey, body: { role } });
        assert.ok(r.status === 201 || r.status === 200, r.text);
      }
    });
    after(() => app.close());

    const newAccount = async (body: Record<string, unknown> = {}, key = adminKey, on = team) => {
      const r = await app.request('POST', `/gateway/v1/teams/${on}/service-accounts`, { key, body: { name: `ci ${randomUUID().slice(0, 8)}`, ...body } });
      assert.equal(r.status, 201, r.text);
      return r.body as { id: string; username: string; keyless: boolean; key: { key: string } | null };
    };
    const rulesPath = (saId: string) => `/gateway/v1/service-accounts/${saId}/federated-credentials`;
    const ghRule = (extra: Record<string, unknown> = {}) => ({ name: 'main branch', issuer: GITHUB, subject: 'repo:acme/train:ref:refs/heads/main', ...extra });
    const addRule = (saId: string, body: Record<string, unknown> = ghRule(), key = adminKey) => app.request('POST', rulesPath(saId), { key, body });
    /** An access token row as an exchange writes it (the exchange itself is tested elsewhere). */
    const issueToken = async (saId: string, credentialId: string, expiresInMs = 3_600_000) => {
      const orgRow = await app.gw.core.store.repos.orgs.findBySlug(org);
      assert.ok(orgRow);
      const id = randomUUID();
      const now = Date.now();
      await app.gw.core.store.repos.accessTokens.insert({
        id,
        org_id: orgRow.id,
        service_account_id: saId,
        credential_id: credentialId,
        token_id: `tga-${id.slice(0, 6)}`,
        token_hash: createHash('sha256').update(id).digest('hex'),
        issuer: GITHUB,
        subject: 'repo:acme/train:ref:refs/heads/main',
        jti: null,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + expiresInMs).toISOString(),
        revoked_at: null,
      });
      return { id, orgId: orgRow.id };
    };
    const auditOf = async (targetId: string) => {
      const r = await app.request('GET', `/gateway/v1/orgs/${org}/audit?limit=100`, { key: adminKey });
      assert.equal(r.status, 200, r.text);
      return (r.body.events as Array<{ action: string; target: { id: string }; details: Record<string, unknown> }>).filter((e) => e.target.id === targetId);
    };

    test('a team admin creates, lists, reads and deletes a rule; the audience defaults to the org slug; each change is audited', async () => {
      const sa = await newAccount();
      const c = await addRule(sa.id, ghRule({ conditions: { environment: 'prod' } }), teamAdmin.key);
      assert.equal(c.status, 201, c.text);
      const rule = c.body;
      assert.deepEqual(Object.keys(rule).sort(), ['audience', 'conditions', 'created_at', 'id', 'issuer', 'name', 'service_account', 'subject']);
      assert.equal(rule.audience, org);
      assert.equal(rule.issuer, GITHUB);
      assert.equal(rule.service_account, sa.username);
      assert.deepEqual(rule.conditions, { environment: 'prod' });
      const c2 = await addRule(sa.id, ghRule({ name: 'k8s', issuer: 'https://k8s.example', subject: 'system:serviceaccount:ml:trainer', audience: 'custom-aud' }));
      assert.equal(c2.status, 201, c2.text);
      assert.equal(c2.body.audience, 'custom-aud');

      const list = await app.request('GET', rulesPath(sa.id), { key: teamAdmin.key });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.body.federated_credentials.map((r: { id: string }) => r.id), [rule.id, c2.body.id]);
      const got = await app.request('GET', `${rulesPath(sa.id)}/${rule.id}`, { key: teamAdmin.key });
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.body, rule);

      // Tokens: two live of this rule, one already expired, one of the other rule: only the two are revoked.
      const live1 = await issueToken(sa.id, rule.id);
      const live2 = await issueToken(sa.id, rule.id);
      const expired = await issueToken(sa.id, rule.id, -1000);
      const otherRule = await issueToken(sa.id, c2.body.id);
      const d = await app.request('DELETE', `${rulesPath(sa.id)}/${rule.id}`, { key: teamAdmin.key });
      assert.equal(d.status, 204, d.text);
      const tokens = app.gw.core.store.repos.accessTokens;
      for (const t of [live1, live2]) assert.ok((await tokens.findById(t.orgId, t.id))?.revoked_at, 'a live token of the rule is revoked');
      for (const t of [expired, otherRule]) assert.equal((await tokens.findById(t.orgId, t.id))?.revoked_at, null);
      assert.equal((await app.request('GET', `${rulesPath(sa.id)}/${rule.id}`, { key: teamAdmin.key })).status, 404);
      assert.equal((await app.request('DELETE', `${rulesPath(sa.id)}/${rule.id}`, { key: teamAdmin.key })).status, 404);
      assert.deepEqual((await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials.map((r: { id: string }) => r.id), [c2.body.id]);

      const events = await auditOf(rule.id);
      const create = events.find((e) => e.action === 'federated_credential.create');
      const del = events.find((e) => e.action === 'federated_credential.delete');
      assert.ok(create && del, JSON.stringify(events));
      assert.equal(create.details.subject, rule.subject);
      assert.equal(del.details.tokens_revoked, 2);
    });

    test('refused rules: 400 validation_failed naming each problem, nothing saved', async () => {
      const sa = await newAccount();
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [ghRule({ subject: 'repo:*' }), 'subject', /GitHub Actions/],
        [ghRule({ subject: 'repo:acme*' }), 'subject', /pin your own/],
        [ghRule({ issuer: 'https://k8s.example', subject: '*' }), 'subject', /every token/],
        [ghRule({ issuer: 'http://k8s.example' }), 'issuer', /https/],
        [ghRule({ issuer: 'k8s.example' }), 'issuer', /URL/],
        [ghRule({ issuer: 'https://k8s.example/#frag' }), 'issuer', /fragment/],
        [ghRule({ conditions: { sub: 'repo:acme/train' } }), 'conditions', /cannot be a condition/],
        [ghRule({ conditions: { iss: GITHUB } }), 'conditions', /cannot be a condition/],
        [ghRule({ name: 'x'.repeat(101) }), 'name', /100/],
        [ghRule({ issuer: `https://k8s.example/${'a'.repeat(520)}` }), 'issuer', /512/],
        [ghRule({ subject: 'x'.repeat(513) }), 'subject', /512/],
        [ghRule({ audience: 'x'.repeat(257) }), 'audience', /256/],
        [ghRule({ extra: 1 }), '', /unknown field/],
      ];
      for (const [body, field, re] of cases) {
        const r = await addRule(sa.id, body);
        assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 120)}: ${r.text}`);
        assert.equal(r.body.error.code, 'validation_failed');
        assert.ok(
          r.body.error.problems.some((p: { field: string; message: string }) => p.field === field && re.test(p.message)) || (field === '' && re.test(r.body.error.message)),
          `${field}: ${r.text}`,
        );
      }
      assert.deepEqual((await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials, []);
      // The owner pinned by a condition makes a wide subject acceptable.
      assert.equal((await addRule(sa.id, ghRule({ subject: 'repo:*', conditions: { repository_owner: 'acme' } }))).status, 201);
    });

    test('who may: a team member 403, a member of another team 404, another organization 404, org admin and team admin yes', async () => {
      const sa = await newAccount();
      const r = await addRule(sa.id);
      assert.equal(r.status, 201, r.text);
      for (const [method, path, body] of [
        ['POST', rulesPath(sa.id), ghRule()],
        ['GET', rulesPath(sa.id)],
        ['GET', `${rulesPath(sa.id)}/${r.body.id}`],
        ['DELETE', `${rulesPath(sa.id)}/${r.body.id}`],
      ] as Array<[string, string, unknown?]>) {
        const asMember = await app.request(method, path, { key: member.key, body });
        assert.equal(asMember.status, 403, `${method} ${path} as a team member: ${asMember.text}`);
        assert.equal((await app.request(method, path, { key: outsider.key, body })).status, 404, `${method} ${path} as an outsider`);
        assert.equal((await app.request(method, path, { key: other.adminKey, body })).status, 404, `${method} ${path} as another org's admin`);
      }
      // A rule named under another account of the same org is not found there.
      const sa2 = await newAccount();
      assert.equal((await app.request('GET', `${rulesPath(sa2.id)}/${r.body.id}`, { key: adminKey })).status, 404);
      assert.equal((await app.request('DELETE', `${rulesPath(sa2.id)}/${r.body.id}`, { key: adminKey })).status, 404);
      // A service account's own key manages nothing.
      assert.ok(sa.key);
      assert.ok([403, 404].includes((await addRule(sa.id, ghRule(), sa.key.key)).status));
      assert.equal((await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials.length, 1);
    });

    test('an organization off the enterprise plan cannot add rules (403), but can still list and delete them', async () => {
      const ent = await app.bootstrap();
      const t = await app.request('POST', `/gateway/v1/orgs/${ent.org}/teams`, { key: ent.adminKey, body: { name: `t-${ent.org}` } });
      assert.equal(t.status, 201, t.text);
      const sa = (await app.request('POST', `/gateway/v1/teams/t-${ent.org}/service-accounts`, { key: ent.adminKey, body: { name: 'ci' } })).body;
      const r = await app.request('POST', rulesPath(sa.id), { key: ent.adminKey, body: ghRule() });
      assert.equal(r.status, 201, r.text);
      const down = await app.request('PATCH', `/gateway/v1/orgs/${ent.org}`, { key: ent.adminKey, body: { plan: 'standard' } });
      assert.equal(down.status, 200, down.text);
      const refused = await app.request('POST', rulesPath(sa.id), { key: ent.adminKey, body: ghRule({ name: 'second' }) });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.error.code, 'enterprise_feature');
      assert.equal((await app.request('GET', rulesPath(sa.id), { key: ent.adminKey })).body.federated_credentials.length, 1);
      assert.equal((await app.request('DELETE', `${rulesPath(sa.id)}/${r.body.id}`, { key: ent.adminKey })).status, 204);
    });

    test('at most 10 rules per account (409), also when asked at once', async () => {
      const sa = await newAccount();
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => addRule(sa.id, ghRule({ name: `rule ${i}`, subject: `repo:acme/train:environment:e${i}` }))));
      assert.deepEqual(results.map((r) => r.status).sort(), [...Array(10).fill(201), 409, 409]);
      const conflict = results.find((r) => r.status === 409);
      assert.equal(conflict?.body.error.code, 'too_many_federated_credentials');
      assert.equal((await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials.length, 10);
    });

    test('a keyless account: no key at creation, none may be made (409); its view says keyless', async () => {
      const sa = await newAccount({ keyless: true }, teamAdmin.key);
      assert.equal(sa.key, null);
      assert.equal(sa.keyless, true);
      const k = await app.request('POST', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: adminKey, body: { name: 'sneaky' } });
      assert.equal(k.status, 409, k.text);
      assert.equal(k.body.error.code, 'service_account_keyless');
      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}/keys`, { key: adminKey })).body.keys.length, 0);
      assert.equal((await app.request('GET', `/gateway/v1/service-accounts/${sa.id}`, { key: member.key })).body.keyless, true);
      const orgScoped = await app.request('POST', `/gateway/v1/orgs/${org}/service-accounts`, { key: adminKey, body: { name: 'org ci', keyless: true, default_team: team } });
      assert.equal(orgScoped.status, 201, orgScoped.text);
      assert.equal(orgScoped.body.key, null);
      assert.equal(orgScoped.body.keyless, true);
      const keyed = await newAccount();
      assert.equal(keyed.keyless, false);
      assert.ok(keyed.key);
      assert.equal((await addRule(sa.id)).status, 201, 'a keyless account takes rules');
    });

    test('deleting a service account deletes its rules and revokes its access tokens', async () => {
      const sa = await newAccount({ keyless: true });
      const r = await addRule(sa.id);
      assert.equal(r.status, 201, r.text);
      const token = await issueToken(sa.id, r.body.id);
      const d = await app.request('DELETE', `/gateway/v1/service-accounts/${sa.id}`, { key: teamAdmin.key });
      assert.equal(d.status, 204, d.text);
      assert.equal(await app.gw.core.store.repos.federatedCredentials.findById(token.orgId, r.body.id), undefined);
      assert.ok((await app.gw.core.store.repos.accessTokens.findById(token.orgId, token.id))?.revoked_at);
      const events = await auditOf(sa.id);
      const del = events.find((e) => e.action === 'service_account.delete');
      assert.equal(del?.details.revoked_access_tokens, 1);
      assert.equal(del?.details.federated_credentials_deleted, 1);
    });
  });
}
