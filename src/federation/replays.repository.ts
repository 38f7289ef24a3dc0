import type { Kysely } from 'kysely';
import type { FederationTables } from './federation.tables.ts';

/**
 * The assertion ids already exchanged (RFC 7523 §3 item 7): an assertion is used once. Kept in the database,
 * not Redis, so that every instance sees the same record whether or not Redis is up.
 */
export class FederationReplaysRepository {
  constructor(private readonly db: Kysely<FederationTables>) {}

  /**
   * Records (issuer, jti) until `expiresAt`; false when it was already recorded and has not expired (a
   * replay). An expired record of the same pair (the issuer reused an id after the first token lapsed) is
   * replaced. Call inside the exchange's transaction, so that a failed exchange does not burn the id.
   */
  async remember(issuer: string, jti: string, expiresAt: string, now: string): Promise<boolean> {
    await this.db.deleteFrom('federation_replays').where('issuer', '=', issuer).where('jti', '=', jti).where('expires_at', '<=', now).execute();
    // ON CONFLICT rather than catching the unique violation: on PostgreSQL a failed statement aborts the transaction.
    const r = await this.db
      .insertInto('federation_replays')
      .values({ issuer, jti, expires_at: expiresAt })
      .onConflict((oc) => oc.columns(['issuer', 'jti']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async pruneExpired(now: string): Promise<number> {
    const r = await this.db.deleteFrom('federation_replays').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
