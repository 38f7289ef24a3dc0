/**
 * The roles, in an organization and in a team alike: the one list, from which the types, the zod
 * enums (fields.role, roleOut), the tables' columns and the pages' choices are derived.
 */
export const ROLES = ['admin', 'member', 'viewer'] as const;
export type OrgRole = (typeof ROLES)[number];
/** A team's roles are the organization's. */
export type TeamRole = OrgRole;

export interface PrincipalTeam {
  name: string;
  role: TeamRole;
}

/**
 * Who is calling, as established by a credential. Built once per credential
 * and cached on the hot path, so it holds only what identity decisions need;
 * management routes re-read roles from the database before changing anything.
 */
export interface Principal {
  type: 'user' | 'service_account';
  /** How the caller proved it: an API key, a browser session, a federation access token. */
  via: 'api_key' | 'session' | 'access_token';
  orgId: string;
  orgSlug: string;
  /** users.id for a person, service_accounts.id for a service account. */
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  orgRole: OrgRole | null;
  instanceAdmin: boolean;
  teams: PrincipalTeam[];
  /** api_keys.id of the key used, when via = api_key. */
  keyId: string | null;
  /** The organization's policy "require SSO": its people may use only their IdP in the browser. */
  orgRequireSso?: boolean;
}
