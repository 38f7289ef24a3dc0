import assert from 'node:assert/strict';
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

/** A trust rule of a service account, through the API (POST …/federated-credentials). */
export async function addRule(app: TestApp, adminKey: string, serviceAccountId: string, rule: RuleInput): Promise<{ id: string }> {
  const r = await app.request('POST', `/gateway/v1/service-accounts/${serviceAccountId}/federated-credentials`, { key: adminKey, body: rule });
  assert.equal(r.status, 201, r.text);
  return r.body;
}

/** Deletes a rule through the API (DELETE …/federated-credentials/:id: its live tokens are revoked). */
export async function deleteRule(app: TestApp, adminKey: string, serviceAccountId: string, ruleId: string): Promise<void> {
  const r = await app.request('DELETE', `/gateway/v1/service-accounts/${serviceAccountId}/federated-credentials/${ruleId}`, { key: adminKey });
  assert.equal(r.status, 204, r.text);
}

/** An enterprise organization with a team and a keyless service account in it. */
export async function federatedAccount(app: TestApp, name = 'trainer'): Promise<{ org: string; adminKey: string; team: string; sa: { id: string; username: string } }> {
  const { org, adminKey } = await app.bootstrap({ plan: 'enterprise' });
  const team = `ml-${org}`;
  assert.equal((await app.request('POST', `/gateway/v1/orgs/${org}/teams`, { key: adminKey, body: { name: team } })).status, 201);
  const r = await app.request('POST', `/gateway/v1/teams/${team}/service-accounts`, { key: adminKey, body: { name, keyless: true } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.key, null);
  return { org, adminKey, team, sa: { id: r.body.id, username: r.body.username } };
}
