import type { Generated } from 'kysely';

/**
 * Audit events (migration 001).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
export interface AuditEventsTable {
  id: string;
  // bigserial on PostgreSQL, which pg hands back as a string (integer on SQLite): readers take Number(seq).
  seq: Generated<number | string>;
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
