import type { Kysely, Selectable } from 'kysely';
import type { AccessTokensTable, FederationTables } from './federation.tables.ts';

export type AccessTokenRow = Selectable<AccessTokensTable>;

/** Expired tokens pruned per statement: a prune never holds many rows at once. */
const PRUNE_CHUNK = 500;

/**
 * Storage of access tokens (opaque, hashed). Scoped to an organization, except findByHash (the token's
 * hash names its organization) and prune (housekeeping of expired rows of every organization).
 */
export class AccessTokensRepository {
  constructor(private readonly db: Kysely<FederationTables>) {}

  async insert(row: AccessTokenRow): Promise<void> {
    await this.db.insertInto('access_tokens').values(row).execute();
  }

  async findByHash(hash: string): Promise<AccessTokenRow | undefined> {
    return this.db.selectFrom('access_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  }

  async findById(orgId: string, id: string): Promise<AccessTokenRow | undefined> {
    return this.db.selectFrom('access_tokens').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /**
   * Revokes the live tokens a rule issued, or all of a service account's; returns their hashes, so that the
   * caller's transaction logs them as invalidations (src/auth/invalidation.ts). One row at a time in id
   * order, as KeysRepository.revokeAllForOwner does and for the same reason (no lock-order deadlocks).
   */
  async revokeWhere(orgId: string, by: { credentialId: string } | { serviceAccountId: string }, at: string): Promise<string[]> {
    let q = this.db.selectFrom('access_tokens').select(['id', 'token_hash']).where('org_id', '=', orgId).where('revoked_at', 'is', null).where('expires_at', '>', at);
    q = 'credentialId' in by ? q.where('credential_id', '=', by.credentialId) : q.where('service_account_id', '=', by.serviceAccountId);
    const rows = await q.orderBy('id').execute();
    const hashes: string[] = [];
    for (const r of rows) if (await this.revoke(orgId, r.id, at)) hashes.push(r.token_hash);
    return hashes;
  }

  async revoke(orgId: string, id: string, at: string): Promise<boolean> {
    const r = await this.db.updateTable('access_tokens').set({ revoked_at: at }).where('org_id', '=', orgId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Live tokens of a rule (the pages show how many are out). */
  async countLive(orgId: string, credentialId: string, now: string): Promise<number> {
    const r = await this.db
      .selectFrom('access_tokens')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('org_id', '=', orgId)
      .where('credential_id', '=', credentialId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Deletes tokens that expired before `before` (a while ago: an expired token is refused by its expiry alone); returns how many. */
  async pruneExpired(before: string): Promise<number> {
    let total = 0;
    for (;;) {
      const ids = await this.db.selectFrom('access_tokens').select('id').where('expires_at', '<', before).limit(PRUNE_CHUNK).execute();
      if (ids.length === 0) return total;
      const r = await this.db.deleteFrom('access_tokens').where('id', 'in', ids.map((i) => i.id)).executeTakeFirst();
      total += Number(r.numDeletedRows);
      if (ids.length < PRUNE_CHUNK) return total;
    }
  }
}
