/**
 * Keys that sign identity assertions (migration 002).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
/** Keys that sign identity assertions (src/assertions). */
export interface SigningKeysTable {
  id: string;
  alg: string;
  public_jwk: string;
  private_jwk_sealed: string;
  created_at: string;
  activates_at: string;
  expires_at: string | null;
}

export interface SigningKeysTables {
  signing_keys: SigningKeysTable;
}
