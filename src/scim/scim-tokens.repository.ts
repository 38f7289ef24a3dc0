import type { Kysely, Selectable } from 'kysely';
import type { ScimTables, ScimTokensTable } from './scim.tables.ts';

export type ScimTokenRow = Selectable<ScimTokensTable>;

/** Storage of SCIM tokens. Scoped to an organization, except findByHash: the token's hash is what names its organization. */
export class ScimTokensRepository {
  constructor(private readonly db: Kysely<ScimTables>) {}

  async insert(row: ScimTokenRow): Promise<void> {
    await this.db.insertInto('scim_tokens').values(row).execute();
  }

  async findByHash(hash: string): Promise<ScimTokenRow | undefined> {
    return this.db.selectFrom('scim_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  }

  async findById(orgId: string, id: string): Promise<ScimTokenRow | undefined> {
    return this.db.selectFrom('scim_tokens').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** The organization's tokens that are not revoked, oldest first (an organization holds a handful). */
  async listLive(orgId: string): Promise<ScimTokenRow[]> {
    return this.db.selectFrom('scim_tokens').selectAll().where('org_id', '=', orgId).where('revoked_at', 'is', null).orderBy('created_at').orderBy('id').execute();
  }

  async countLive(orgId: string): Promise<number> {
    const r = await this.db.selectFrom('scim_tokens').select((eb) => eb.fn.countAll().as('n')).where('org_id', '=', orgId).where('revoked_at', 'is', null).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async revoke(orgId: string, id: string, at: string): Promise<boolean> {
    const r = await this.db.updateTable('scim_tokens').set({ revoked_at: at }).where('org_id', '=', orgId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async touchLastUsed(id: string, at: string): Promise<void> {
    await this.db.updateTable('scim_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
