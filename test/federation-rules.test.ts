import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ruleMatches, ruleProblems, subjectMatches } from '../src/federation/trust-rules.ts';
import type { TrustRule } from '../src/federation/trust-rules.ts';
import { parseConditionLines } from '../src/web/pages/team-trust-rules.ts';
import { dialects, startApp } from './support/app.ts';
import type { TestApp } from './support/app.ts';
import { decodeHtml, signIn, textOf } from './support/web.ts';

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

  test('the pages\' conditions box: claim=value per line', () => {
    assert.deepEqual(parseConditionLines('repository_owner=acme\n\n environment = prod \nref=refs/heads/a=b'), { repository_owner: 'acme', environment: 'prod', ref: 'refs/heads/a=b' });
    assert.equal(parseConditionLines('  \n'), undefined);
    assert.throws(() => parseConditionLines('a=1\nlonely'), /line 2/);
    assert.throws(() => parseConditionLines('a=1\na=2'), /twice/);
    assert.deepEqual(Object.getPrototypeOf(parseConditionLines('__proto__=x') ?? {}), Object.prototype);
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

    test('team page: a keyless account is created from the form; a trust rule is added and deleted there; a refused rule shows its problem on its form', async () => {
      const b = await signIn(app, `${teamAdmin.username}@${org}.example`);
      const teamPath = `/teams/${team}`;
      const created = await b.submit(teamPath, `${teamPath}/members`, { kind: 'service', name: 'page ci', keyless: 'on' });
      assert.equal(created.status, 303, created.text.slice(0, 500));
      let page = await b.get(teamPath);
      assert.equal(page.status, 200);
      assert.match(textOf(page.text), /Keyless service account page-ci[^ ]* was created/);
      assert.equal(page.text.match(/tgs-[A-Za-z0-9]{40}/g), null, 'no key for a keyless account');
      const listed = await app.request('GET', `/gateway/v1/teams/${team}/service-accounts?limit=100`, { key: adminKey });
      const sa = listed.body.service_accounts.find((x: { name: string }) => x.name === 'page ci');
      assert.ok(sa?.keyless, listed.text);
      const block = (text: string) => {
        const start = text.indexOf(`id="trust-${sa.id}"`);
        assert.ok(start > 0, 'the account has a trust-rules block');
        return text.slice(start, text.indexOf('</form>', start));
      };
      assert.match(block(page.text), /keyless/);
      const rulesAction = `${teamPath}/service-accounts/${sa.id}/federated-credentials`;

      // Refused: GitHub Actions with a subject that pins nobody; the problem and what was typed stay on this form.
      const refused = await b.submit(teamPath, rulesAction, { rule_for: sa.id, name: 'too wide', issuer_preset: 'github', subject: 'repo:*', conditions: '' });
      assert.equal(refused.status, 400, refused.text.slice(0, 500));
      const refusedBlock = block(refused.text);
      assert.match(decodeHtml(refusedBlock), /role="alert"[\s\S]*pin your own/);
      assert.match(decodeHtml(refusedBlock), /name="subject"[^>]*value="repo:\*"/);
      assert.doesNotMatch(refused.text.slice(0, refused.text.indexOf(`id="trust-${sa.id}"`)), /role="alert"/, 'not at the top of the page');
      const k8sNoUrl = await b.submit(teamPath, rulesAction, { rule_for: sa.id, name: 'k8s', issuer_preset: 'kubernetes', subject: 'system:serviceaccount:ml:trainer' });
      assert.equal(k8sNoUrl.status, 400);
      assert.match(textOf(block(k8sNoUrl.text)), /issuer URL/);
      const badLine = await b.submit(teamPath, rulesAction, { rule_for: sa.id, name: 'x', issuer_preset: 'github', subject: 'repo:acme/train:*', conditions: 'no equals sign' });
      assert.equal(badLine.status, 400);
      assert.match(textOf(block(badLine.text)), /claim=value/);
      assert.equal((await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials.length, 0, 'nothing saved');
      // No CSRF token: refused.
      assert.equal((await b.post(rulesAction, { name: 'x', issuer_preset: 'github', subject: 'repo:acme/train:*' })).status, 403);

      const added = await b.submit(teamPath, rulesAction, { rule_for: sa.id, name: 'train main', issuer_preset: 'github', subject: 'repo:acme/train:*', conditions: 'environment=prod\nref=refs/heads/main' });
      assert.equal(added.status, 303, added.text.slice(0, 800));
      page = await b.get(teamPath);
      assert.match(textOf(page.text), /Trust rule "train main" was added/);
      const rules = (await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials;
      assert.equal(rules.length, 1);
      assert.deepEqual({ ...rules[0], id: '', created_at: '' }, { id: '', created_at: '', name: 'train main', issuer: GITHUB, audience: org, subject: 'repo:acme/train:*', conditions: { environment: 'prod', ref: 'refs/heads/main' }, service_account: sa.username });
      const listedBlock = page.text.slice(page.text.indexOf(`id="trust-${sa.id}"`));
      for (const s of [GITHUB, 'repo:acme/train:*', org, 'environment=prod']) assert.ok(decodeHtml(listedBlock).includes(s), `the page shows ${s}`);

      const k8s = await b.submit(teamPath, rulesAction, { rule_for: sa.id, name: 'cluster', issuer_preset: 'kubernetes', issuer: 'https://k8s.example/cluster', subject: 'system:serviceaccount:ml:trainer', audience: 'custom' });
      assert.equal(k8s.status, 303, k8s.text.slice(0, 800));

      const deleted = await b.submit(teamPath, `${rulesAction}/${rules[0].id}/delete`, {});
      assert.equal(deleted.status, 303);
      assert.match(textOf((await b.get(teamPath)).text), /Trust rule "train main" of page-ci[^ ]* was deleted/);
      const left = (await app.request('GET', rulesPath(sa.id), { key: adminKey })).body.federated_credentials;
      assert.deepEqual(left.map((r: { name: string; audience: string }) => [r.name, r.audience]), [['cluster', 'custom']]);

      // A plain member sees the account, but no rules and no forms.
      const m = await signIn(app, `${member.username}@${org}.example`);
      const memberPage = await m.get(teamPath);
      assert.equal(memberPage.status, 200);
      assert.ok(!memberPage.text.includes(`id="trust-${sa.id}"`));
      assert.equal((await m.submit(teamPath, rulesAction, { name: 'x', issuer_preset: 'github', subject: 'repo:acme/train:*' })).status, 403);
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
