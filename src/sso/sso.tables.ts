/**
 * The SSO feature's tables (migration 003_sso). Same column conventions as
 * every table (docs/ARCHITECTURE.md, "Storage"): text UUIDs, ISO-8601 text timestamps, integer booleans,
 * JSON as text.
 * src/storage.ts composes them with every other feature's tables.
 */
export interface SsoConnectionsTable {
  id: string;
  org_id: string;
  issuer: string;
  client_id: string;
  flow: 'implicit' | 'code';
  response_mode: 'form_post' | 'fragment';
  /** SecretBox-sealed (purpose "sso-client-secret"); never returned by the API. */
  client_secret_sealed: string | null;
  /** JSON string[] */
  scopes: string;
  /** JSON {email?, name?, username?, groups?}: which claim holds what. */
  claims: string;
  /** JSON [{group, team, role}] */
  group_roles: string;
  jit: number;
  /** JSON string[] (Azure AD tenant GUIDs, lower-case) */
  allowed_tenant_ids: string;
  enabled: number;
  /** JSON: the discovery document as last fetched (endpoints, jwks_uri, algorithms). */
  metadata: string | null;
  discovered_at: string | null;
  /** Which protocol the connection speaks (migration 013; every older row is OIDC). Read it through connectionKind(). */
  kind?: 'oidc' | 'saml';
  /** JSON SamlSettings (src/sso/saml/settings.ts) on a SAML connection; null on an OIDC one. */
  saml?: string | null;
  created_at: string;
  updated_at: string;
}

/** Home realm discovery: an email domain is served by exactly one connection on the instance. */
export interface SsoDomainsTable {
  domain: string;
  org_id: string;
  connection_id: string;
}

/** A person's account at an IdP, linked to a user: (issuer, subject), or (tenant, object ID) for Azure AD. */
export interface ExternalIdentitiesTable {
  id: string;
  org_id: string;
  user_id: string;
  connection_id: string;
  /** "oidc|<iss>|<sub>" or "azure|<tid>|<oid>"; unique per organization. */
  identity_key: string;
  issuer: string;
  subject: string;
  tenant_id: string | null;
  object_id: string | null;
  created_at: string;
  last_login_at: string;
}

/** One login attempt, single-use: looked up and deleted by the SHA-256 of its state. */
export interface LoginTransactionsTable {
  state_hash: string;
  org_id: string;
  connection_id: string;
  nonce: string;
  /** SecretBox-sealed PKCE verifier (code flow). */
  code_verifier_sealed: string | null;
  return_to: string;
  /** SHA-256 of the browser's login-binding cookie. */
  binding_hash: string;
  created_at: string;
  expires_at: string;
  /** A test login's: the hash of the admin's session that started it (its callback reports, signs nobody in). */
  test_of?: string | null;
}

/** express-session's store on the database. */
export interface SessionsTable {
  sid: string;
  /** JSON session data. */
  data: string;
  user_id: string | null;
  expires_at: string;
}

export type SsoTables = {
  sso_connections: SsoConnectionsTable;
  sso_domains: SsoDomainsTable;
  external_identities: ExternalIdentitiesTable;
  login_transactions: LoginTransactionsTable;
  sessions: SessionsTable;
};
