import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ruleProblems } from '../../src/federation/trust-rules.ts';
import type { TestApp, TestResponse } from './app.ts';

/** RFC 7523's grant type. */
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Go's url.QueryEscape: everything but A-Z a-z 0-9 - _ . ~ percent-encoded, a space as '+'. */
export function goQueryEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * The tracking client's token request body, byte for byte (its Go core formats it by hand: the grant type
 * as it is, colons and all, then the assertion through url.QueryEscape).
 */
export function tokenForm(assertion: string): string {
  return `grant_type=${JWT_BEARER}&assertion=${goQueryEscape(assertion)}`;
}

/** POST /oidc/token as the tracking client does (form, no client authentication). */
export function exchange(app: TestApp, assertion: string, headers: Record<string, string> = {}): Promise<TestResponse> {
  return app.request('POST', '/oidc/token', { rawBody: tokenForm(assertion), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
}

export interface RuleInput {
  name: string;
  issuer: string;
  audience?: string;
  subject: string;
  conditions?: Record<string, string>;
}

/**
 * A trust rule of a service account, through the API (POST …/federated-credentials). Until the rules
 * helper's routes are on main, the same row through the repository (validated by the same ruleProblems):
 * a missing route answers its 404 naming the path, which an unknown account's 404 does not.
 */
export async function addRule(app: TestApp, adminKey: string, serviceAccountId: string, rule: RuleInput): Promise<{ id: string }> {
  const r = await app.request('POST', `/gateway/v1/service-accounts/${serviceAccountId}/federated-credentials`, { key: adminKey, body: rule });
  if (!(r.status === 404 && String(r.body?.error?.message ?? '').startsWith('POST '))) {
    assert.equal(r.status, 201, r.text);
    return r.body;
  }
  const repos = app.gw.core.store.repos;
  const row = await findServiceAccount(app, serviceAccountId);
  const org = await repos.orgs.findById(row.org_id);
  const full = { issuer: rule.issuer, audience: rule.audience ?? org!.slug, subject: rule.subject, conditions: rule.conditions ?? {} };
  assert.deepEqual(ruleProblems(full, { allowHttp: true }), []);
  const id = randomUUID();
  await repos.federatedCredentials.insert({ id, org_id: row.org_id, service_account_id: serviceAccountId, name: rule.name, ...full, conditions: JSON.stringify(full.conditions), created_by: null, created_at: new Date().toISOString() });
  return { id };
}

async function findServiceAccount(app: TestApp, id: string): Promise<{ org_id: string }> {
  const db = app.gw.core.database.db;
  const row = await db.selectFrom('service_accounts').select(['org_id']).where('id', '=', id).executeTakeFirst();
  assert.ok(row, `service account ${id}`);
  return row;
}

/**
 * Deletes a rule through the API (DELETE …/federated-credentials/:id: its live tokens revoked). Until the
 * rules helper's route is on main, what that route does, through the invalidator on this instance.
 */
export async function deleteRule(app: TestApp, adminKey: string, serviceAccountId: string, ruleId: string): Promise<void> {
  const r = await app.request('DELETE', `/gateway/v1/service-accounts/${serviceAccountId}/federated-credentials/${ruleId}`, { key: adminKey });
  if (!(r.status === 404 && String(r.body?.error?.message ?? '').startsWith('DELETE '))) {
    assert.equal(r.status, 204, r.text);
    return;
  }
  const core = app.gw.core;
  const { org_id: orgId } = await findServiceAccount(app, serviceAccountId);
  await core.invalidator.transaction(core.store, async (repos, invalidate) => {
    for (const hash of await repos.accessTokens.revokeWhere(orgId, { credentialId: ruleId }, new Date().toISOString())) invalidate.key(hash);
    await repos.federatedCredentials.delete(orgId, ruleId);
  });
}

/** An enterprise organization with a team and a service account (keyless when the API takes it) in it. */
export async function federatedAccount(app: TestApp, name = 'trainer'): Promise<{ org: string; adminKey: string; team: string; sa: { id: string; username: string } }> {
  const { org, adminKey } = await app.bootstrap({ plan: 'enterprise' });
  const team = `ml-${org}`;
  assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
  let r = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name, keyless: true } });
  // Before the keyless field exists, the body's unknown field is refused: an account with a key does as well here.
  if (r.status === 400) r = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name } });
  assert.equal(r.status, 201, r.text);
  return { org, adminKey, team, sa: { id: r.body.id, username: r.body.username } };
}
