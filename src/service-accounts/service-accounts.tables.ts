/**
 * Service accounts (migration 002).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
export interface ServiceAccountsTable {
  id: string;
  org_id: string;
  team_id: string;
  scope: 'team' | 'org';
  /** 1: federated only (migration 010): it authenticates only by workload federation and holds no API keys. */
  keyless: number;
  username: string;
  name: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface ServiceAccountsTables {
  service_accounts: ServiceAccountsTable;
}
