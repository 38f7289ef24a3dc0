/**
 * API keys (migrations 001, 005).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
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

export interface KeysTables {
  api_keys: ApiKeysTable;
}

/**
 * Of the owners' tables (src/users, src/service-accounts), the columns KeysRepository.lockOwner
 * touches: declared here by shape, because those features depend on this one and not the reverse.
 */
export interface KeyOwnerTables {
  users: { id: string; org_id: string; status: string; updated_at: string };
  service_accounts: { id: string; org_id: string; updated_at: string };
}
