/**
 * The demo's data, made as an operator and an admin would: the first
 * organization and its admin through the CLI's provisioning service
 * (`trackgate bootstrap`), everything else through the management API with
 * that admin's key. No SQL: what the demo shows is what the product makes.
 *
 *  - acme (enterprise): SSO by the implicit flow (form_post), teams ml and
 *    research, group rules, a pre-provisioned admin (carol, linked by email at
 *    her first sign-in) and a service account on team ml;
 *  - globex (standard): SSO by the code flow with PKCE, team platform, group rules.
 */
import type { Trackgate } from '../src/app.ts';
import { ProvisioningService } from '../src/users/provisioning.ts';
import { LoginLinksService } from '../src/web/login-links.service.ts';
import type { DemoUser } from './idp.ts';

export const DEMO_USERS: DemoUser[] = [
  { sub: 'alice', email: 'alice@acme.test', name: 'Alice Archer', preferred_username: 'alice', groups: ['ml-engineers'], about: 'acme: member of team ml' },
  { sub: 'bob', email: 'bob@acme.test', name: 'Bob Baker', preferred_username: 'bob', groups: ['ml-leads', 'research'], about: 'acme: admin of team ml, viewer of research' },
  { sub: 'carol', email: 'carol@acme.test', name: 'Carol Chen', preferred_username: 'carol', groups: ['ml-leads'], about: 'acme: organization admin (/admin), admin of team ml' },
  { sub: 'dave', email: 'dave@globex.test', name: 'Dave Diaz', preferred_username: 'dave', groups: ['platform'], about: 'globex: member of team platform' },
  { sub: 'mallory', email: 'mallory@elsewhere.test', name: 'Mallory Moss', preferred_username: 'mallory', groups: [], about: 'no organization serves her domain: refused' },
];

const SCOPES = ['openid', 'email', 'profile', 'groups'];

export interface Seeded {
  operatorEmail: string;
  operatorKey: string;
  serviceAccountKey: string;
  loginLink: string;
  people: Array<{ email: string; what: string }>;
}

export async function seed(gw: Trackgate, options: { publicUrl: string; issuer: string }): Promise<Seeded> {
  const { core } = gw;
  const provisioning = new ProvisioningService(core.store, core.users, core.keys, core.audit, core.invalidator);
  const operatorEmail = 'ops@acme.test';
  const boot = await provisioning.bootstrap({ email: operatorEmail, org: 'acme', orgName: 'Acme Research', plan: 'enterprise', username: 'ops' });
  const key = boot.api_key;

  async function call(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${options.publicUrl}/gateway/v1${path}`, {
      method,
      headers: { authorization: 'Basic ' + Buffer.from(`api:${key}`).toString('base64'), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding: ${method} ${path} answered ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  }

  await call('POST', '/orgs', { slug: 'globex', name: 'Globex', plan: 'standard' });
  // Made before her first sign-in, as an admin adds someone on /admin: her SSO identity links to this account by email.
  await call('POST', '/orgs/acme/users', { email: 'carol@acme.test', username: 'carol', role: 'admin', display_name: 'Carol Chen' });
  for (const [org, team] of [['acme', 'ml'], ['acme', 'research'], ['globex', 'platform']] as const) await call('POST', `/orgs/${org}/teams`, { name: team });
  await call('PUT', '/teams/ml/members/carol', { role: 'admin' });

  await call('POST', '/orgs/acme/sso', {
    issuer: options.issuer,
    client_id: 'trackgate-acme',
    flow: 'implicit',
    response_mode: 'form_post',
    scopes: SCOPES,
    domains: ['acme.test'],
    jit: true,
    group_roles: [
      { group: 'ml-engineers', team: 'ml', role: 'member' },
      { group: 'ml-leads', team: 'ml', role: 'admin' },
      { group: 'research', team: 'research', role: 'viewer' },
    ],
  });
  await call('POST', '/orgs/globex/sso', {
    issuer: options.issuer,
    client_id: 'trackgate-globex',
    flow: 'code',
    scopes: SCOPES,
    domains: ['globex.test'],
    jit: true,
    group_roles: [
      { group: 'platform', team: 'platform', role: 'member' },
      { group: 'platform-leads', team: 'platform', role: 'admin' },
    ],
  });
  const sa = await call('POST', '/teams/ml/service-accounts', { name: 'Training pipeline', username: 'ml-pipeline', key_name: 'demo' });

  const link = await new LoginLinksService(core.store, core.audit, options.publicUrl).issueForEmail(operatorEmail);
  return {
    operatorEmail,
    operatorKey: key,
    serviceAccountKey: sa.key.key as string,
    loginLink: link.url,
    people: DEMO_USERS.map((u) => ({ email: u.email, what: u.about })),
  };
}
