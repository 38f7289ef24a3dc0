/**
 * One-time login links (migration 004).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
/** One-time login links (src/web/login-links.*): the SHA-256 of the token, never the token. */
export interface LoginLinksTable {
  token_hash: string;
  org_id: string;
  user_id: string;
  /** Who made it: "cli" (the operator). */
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface LoginLinksTables {
  login_links: LoginLinksTable;
}
