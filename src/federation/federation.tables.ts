/**
 * Workload identity federation's tables (migration 010_federation). Same column conventions as every
 * table (docs/ARCHITECTURE.md, "Storage"); src/storage.ts composes them with every other feature's tables.
 */

/** A trust rule of a service account: which workload tokens may be exchanged for its access tokens. */
export interface FederatedCredentialsTable {
  id: string;
  org_id: string;
  service_account_id: string;
  name: string;
  /** The workload token's `iss`, exactly (no trailing slash added or removed). */
  issuer: string;
  /** The `aud` the token must carry (one of its values); the organization's slug by default. */
  audience: string;
  /** The `sub` to match: exact, or a prefix ending in `*`. */
  subject: string;
  /** JSON object: claim name → the exact string value it must have (`repository_owner`, `environment`, …). */
  conditions: string;
  created_by: string | null;
  created_at: string;
}

/**
 * An access token an exchange issued: opaque, `tga-` + 40 characters (the shape of an API key), only its
 * SHA-256 stored. Verified on the hot path like a key (src/keys/key-verifier.ts, registerSource).
 */
export interface AccessTokensTable {
  id: string;
  org_id: string;
  service_account_id: string;
  /** The federated credential (trust rule) that matched. */
  credential_id: string;
  /** Prefix and first characters, for logs and the audit. */
  token_id: string;
  /** SHA-256 (hex) of the whole token. */
  token_hash: string;
  /** The workload token's `iss` and `sub`, for the audit and the pages. */
  issuer: string;
  subject: string;
  jti: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

/** Assertion ids (`jti`) already exchanged, per issuer, kept until the assertion's `exp`. */
export interface FederationReplaysTable {
  issuer: string;
  jti: string;
  expires_at: string;
}

export interface FederationTables {
  federated_credentials: FederatedCredentialsTable;
  access_tokens: AccessTokensTable;
  federation_replays: FederationReplaysTable;
}
