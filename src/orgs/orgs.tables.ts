/**
 * Organizations (migration 001).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
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

export interface OrgsTables {
  orgs: OrgsTable;
}
