import type { Generated } from 'kysely';

/**
 * Audit events (migration 001).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
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

export interface AuditTables {
  audit_events: AuditEventsTable;
}
