/**
 * The invalidation log (migration 008): every change that makes a cached identity wrong is appended
 * here in the transaction that makes it, so that an instance which missed the message (Redis down, a
 * subscriber reconnecting, the CLI's changes) still learns of it by reading the log.
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
export interface CacheInvalidationHeadTable {
  /** Always 1: one row, whose lock serializes appends (see InvalidationsRepository.append). */
  id: number;
  // bigint, which pg hands back as a string (integer on SQLite): readers take Number(seq).
  seq: number | string;
}

export interface CacheInvalidationsTable {
  seq: number | string;
  kind: 'key' | 'all';
  /** The key's hash for kind 'key', else null. */
  key_hash: string | null;
  created_at: string;
}

export interface InvalidationsTables {
  cache_invalidation_head: CacheInvalidationHeadTable;
  cache_invalidations: CacheInvalidationsTable;
}
