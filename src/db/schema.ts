import type { Generated } from 'kysely';

/**
 * Column conventions, identical on SQLite and PostgreSQL so that one set of
 * repository code serves both: ids are text UUIDs made by the application,
 * timestamps are ISO-8601 UTC text (they sort and compare as text), booleans
 * are integers 0/1, structured values are JSON text.
 */
export interface OrgsTable {
  id: string;
  slug: string;
  name: string;
  plan: 'standard' | 'enterprise';
  require_sso: number;
  disable_personal_keys: number;
  max_key_lifetime_days: number | null;
  created_at: string;
  updated_at: string;
}

export interface UsersTable {
  id: string;
  org_id: string;
  email: string;
  username: string;
  display_name: string;
  role: 'admin' | 'member' | 'viewer';
  status: 'active' | 'deactivated';
  instance_admin: number;
  theme: 'light' | 'dark' | 'system';
  created_at: string;
  updated_at: string;
}

export interface EntityNamesTable {
  name: string;
  kind: 'user' | 'team' | 'service_account';
  org_id: string;
  /** Set when the entity is gone: the name stays its organization's (a tombstone). */
  released_at: string | null;
}

export interface TeamsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
}

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  org_id: string;
  role: 'admin' | 'member' | 'viewer';
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  owner_type: 'user' | 'service_account';
  user_id: string | null;
  service_account_id: string | null;
  name: string;
  key_id: string;
  key_hash: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  rotated_from_id: string | null;
}

export interface AuditEventsTable {
  id: string;
  seq: Generated<number>;
  org_id: string | null;
  actor_type: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  target_name: string | null;
  ip: string | null;
  request_id: string | null;
  details: string | null;
  created_at: string;
}

/** Keys that sign identity assertions (src/assertions). */
export interface SigningKeysTable {
  id: string;
  alg: string;
  public_jwk: string;
  private_jwk_sealed: string;
  created_at: string;
  activates_at: string;
  expires_at: string | null;
}

export interface ServiceAccountsTable {
  id: string;
  org_id: string;
  team_id: string;
  scope: 'team' | 'org';
  username: string;
  name: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** One-time login links (src/web/login-links.*): the SHA-256 of the token, never the token. */
export interface LoginLinksTable {
  token_hash: string;
  org_id: string;
  user_id: string;
  /** Who made it: "cli" (the operator). */
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface DB {
  orgs: OrgsTable;
  users: UsersTable;
  entity_names: EntityNamesTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  api_keys: ApiKeysTable;
  audit_events: AuditEventsTable;
  signing_keys: SigningKeysTable;
  service_accounts: ServiceAccountsTable;
  login_links: LoginLinksTable;
}
