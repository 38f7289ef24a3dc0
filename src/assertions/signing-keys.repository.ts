import type { Kysely, Selectable } from 'kysely';
import type { SigningKeysTable, SigningKeysTables } from './signing-keys.tables.ts';

export type SigningKeyRow = Selectable<SigningKeysTable>;

/**
 * Storage of the keys that sign identity assertions. These belong to the
 * gateway instance as a whole (every organization's assertions are signed by
 * the same issuer), so unlike every other repository this one has no tenant.
 */
export class SigningKeysRepository {
  constructor(private readonly db: Kysely<SigningKeysTables>) {}

  async insert(row: SigningKeyRow): Promise<void> {
    await this.db.insertInto('signing_keys').values(row).execute();
  }

  /** Keys still published at `now` (not expired), oldest first. */
  async listLive(now: string): Promise<SigningKeyRow[]> {
    return this.db
      .selectFrom('signing_keys')
      .selectAll()
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('activates_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
  }

  /** Sets the end of publication of a key once a newer key took over signing; never moves an existing end. */
  async setExpiry(id: string, expiresAt: string): Promise<void> {
    await this.db.updateTable('signing_keys').set({ expires_at: expiresAt }).where('id', '=', id).where('expires_at', 'is', null).execute();
  }

  /** Drops rows that stopped being published before `before`. */
  async deleteExpiredBefore(before: string): Promise<void> {
    await this.db.deleteFrom('signing_keys').where('expires_at', 'is not', null).where('expires_at', '<', before).execute();
  }

  /** Every key's sealed private half (for a rotation of the secret key: src/cli/rotate-secret-key.ts). */
  async listSealed(): Promise<Array<{ id: string; sealed: string }>> {
    const rows = await this.db.selectFrom('signing_keys').select(['id', 'private_jwk_sealed']).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, sealed: r.private_jwk_sealed }));
  }

  async setSealed(id: string, sealed: string): Promise<void> {
    await this.db.updateTable('signing_keys').set({ private_jwk_sealed: sealed }).where('id', '=', id).execute();
  }
}
