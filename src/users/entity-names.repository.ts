import type { Kysely } from 'kysely';
import type { EntityNamesTable, EntityNamesTables } from './users.tables.ts';

/**
 * Users, teams and service accounts share one namespace of entity names
 * across the instance (they all appear in tracking-API paths, and the tracking
 * API keys its own data by them). Claiming a name that exists fails with the
 * database's unique violation.
 *
 * A released name is not deleted: its row stays as a tombstone of the
 * organization that held it (released_at set). That organization may claim it
 * again; no other organization ever can, or it would inherit whatever the
 * tracking API still keeps under that name.
 */
export class EntityNamesRepository {
  constructor(private readonly db: Kysely<EntityNamesTables>) {}

  async claim(name: string, kind: EntityNamesTable['kind'], orgId: string): Promise<void> {
    // The organization's own tombstone comes back to life; anything else is an insert, which a held name refuses.
    const revived = await this.db
      .updateTable('entity_names')
      .set({ kind, released_at: null })
      .where('name', '=', name)
      .where('org_id', '=', orgId)
      .where('released_at', 'is not', null)
      .executeTakeFirst();
    if (Number(revived.numUpdatedRows) > 0) return;
    await this.db.insertInto('entity_names').values({ name, kind, org_id: orgId, released_at: null }).execute();
  }

  /** The entity is gone; its name stays reserved to its organization. */
  async release(orgId: string, name: string): Promise<void> {
    await this.db.updateTable('entity_names').set({ released_at: new Date().toISOString() }).where('org_id', '=', orgId).where('name', '=', name).where('released_at', 'is', null).execute();
  }

  /**
   * Whether `orgId` cannot claim the name: an entity holds it, or another organization released it.
   * Without an organization, any row counts (the caller cannot tell whose tombstone it is).
   */
  async isTaken(name: string, orgId?: string): Promise<boolean> {
    const row = await this.db.selectFrom('entity_names').select(['org_id', 'released_at']).where('name', '=', name).executeTakeFirst();
    if (!row) return false;
    return row.released_at === null || orgId === undefined || row.org_id !== orgId;
  }
}
