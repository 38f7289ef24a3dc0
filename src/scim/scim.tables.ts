/**
 * The SCIM feature's tables (migration 009_scim). Same column conventions as every table
 * (docs/ARCHITECTURE.md, "Storage"); src/storage.ts composes them with every other feature's tables.
 */

/** A credential an organization's IdP provisions with: names the organization, does SCIM and nothing else. */
export interface ScimTokensTable {
  id: string;
  org_id: string;
  name: string;
  /** The token's prefix and first characters, shown in lists (like an API key's key ID). */
  token_id: string;
  /** SHA-256 (hex) of the whole token: the token itself is shown once and never stored. */
  token_hash: string;
  created_at: string;
  /** The user who created it (null when the CLI did). */
  created_by: string | null;
  /** Updated at most once a minute per token. */
  last_used_at: string | null;
  revoked_at: string | null;
}

/** What SCIM says of a user beyond trackgate's users row; a row exists for every user SCIM created or changed. */
export interface ScimUsersTable {
  user_id: string;
  org_id: string;
  /** The IdP's own id for the person (unique within the organization). */
  external_id: string | null;
  given_name: string | null;
  family_name: string | null;
  /** Set by SCIM DELETE: the person left the organization (deactivated, keys revoked, teams and identities gone); SCIM answers 404 for them. */
  removed_at: string | null;
  updated_at: string;
}

/** A team SCIM owns (created it, or adopted it with its first change): its members and name are the IdP's. */
export interface ScimGroupsTable {
  team_id: string;
  org_id: string;
  /** The group's name at the IdP; the team's own name (a slug) stays as it was made. */
  display_name: string;
  external_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface ScimTables {
  scim_tokens: ScimTokensTable;
  scim_users: ScimUsersTable;
  scim_groups: ScimGroupsTable;
}
