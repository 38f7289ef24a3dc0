/**
 * Leaked-credential reports (migration 010_federation). Same column conventions as every table
 * (docs/ARCHITECTURE.md, "Storage"); src/storage.ts composes them with every other feature's tables.
 */

/** A credential a secret scanner reported public, revoked on the report: the notice its owner sees until dismissed. */
export interface LeakedCredentialsTable {
  id: string;
  org_id: string;
  /** 'api_key' | 'scim_token' | 'access_token'. */
  credential_type: string;
  /** The row id of the credential (api_keys.id, scim_tokens.id, access_tokens.id). */
  credential_id: string;
  /** Its key ID (prefix and first characters), as the lists show it. */
  label: string;
  /** Whose notice it is: the person owning the key, or the service account (its team's admins see it). */
  user_id: string | null;
  service_account_id: string | null;
  /** Where it was found, as the scanner said (a public URL) and which scanner or source. */
  url: string | null;
  source: string | null;
  reported_at: string;
  dismissed_at: string | null;
}

export interface SecretScanningTables {
  leaked_credentials: LeakedCredentialsTable;
}
