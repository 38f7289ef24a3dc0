/** A group rule as setup-advice reads it (sso.service.ts's GroupRule, without importing it back). */
interface GroupRule {
  group: string;
  team: string;
  role: string;
}

/** The IdPs the guided setup on /admin knows by name; anything else is "oidc". */
export const PROVIDERS = ['okta', 'azure', 'google', 'oidc'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const GOOGLE_ISSUER = 'https://accounts.google.com';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Which IdP an issuer belongs to, by its host (only to word advice: no check depends on it). */
export function providerOf(issuer: string): Provider {
  let host: string;
  try {
    host = new URL(issuer).hostname.toLowerCase();
  } catch {
    return 'oidc';
  }
  if (host === 'login.microsoftonline.com' || host.endsWith('.microsoftonline.com') || host.endsWith('.ciamlogin.com')) return 'azure';
  if (host === 'accounts.google.com') return 'google';
  if (host.endsWith('.okta.com') || host.endsWith('.oktapreview.com') || host.endsWith('.okta-emea.com')) return 'okta';
  return 'oidc';
}

export interface SetupWarning {
  field: 'scopes' | 'group_roles' | 'claims';
  code: 'groups_scope_missing' | 'groups_claim_not_configured' | 'groups_not_sent' | 'group_not_object_id';
  message: string;
}

/**
 * Why a connection's group rules may silently do nothing: the `groups` scope not requested, the IdP's
 * groups claim needing configuration, or rule groups written in a form the IdP never sends. Warnings,
 * not errors: the connection still saves (the IdP side may be configured another way).
 */
export function groupWarnings(input: { issuer: string; scopes: string[]; groupRules: GroupRule[]; groupsClaim: string }): SetupWarning[] {
  if (input.groupRules.length === 0) return [];
  const provider = providerOf(input.issuer);
  const out: SetupWarning[] = [];
  const hasScope = input.scopes.includes('groups');
  if (provider === 'google') {
    out.push({ field: 'group_roles', code: 'groups_not_sent', message: 'Google Workspace puts no groups in its ID tokens: these group rules will never match anyone (manage the teams by hand, or through SCIM from another IdP)' });
    return out;
  }
  if (provider === 'azure') {
    out.push({ field: 'claims', code: 'groups_claim_not_configured', message: `Entra ID sends groups only when the app registration has a groups claim: Token configuration → Add groups claim → ID token: Group ID. Without it the "${input.groupsClaim}" claim never appears and the rules do nothing` });
    const names = input.groupRules.filter((r) => !GUID.test(r.group)).map((r) => r.group);
    if (names.length) out.push({ field: 'group_roles', code: 'group_not_object_id', message: `Entra ID names groups by their Object ID (a GUID), not by name: the rule group${names.length > 1 ? 's' : ''} ${names.map((n) => `"${n}"`).join(', ')} will never appear` });
    return out;
  }
  if (!hasScope) {
    out.push({ field: 'scopes', code: 'groups_scope_missing', message: `group rules exist but the scopes do not request "groups": the IdP then sends no "${input.groupsClaim}" claim and the rules do nothing; add "groups" to the scopes` });
  }
  if (provider === 'okta') {
    out.push({ field: 'claims', code: 'groups_claim_not_configured', message: 'Okta sends groups only when the authorization server has a "groups" claim: Security → API → Authorization Servers → Claims → Add Claim (ID Token, Always, Groups, filter Matches regex .*)' });
  }
  return out;
}
