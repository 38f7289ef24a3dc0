import type { Kysely } from 'kysely';
import type { DB, EntityNamesTable } from '../db/schema.ts';

/**
 * Users, teams and service accounts share one namespace of entity names
 * across the instance (they all appear in tracking-API paths). Claiming a
 * name that exists fails with the database's unique violation.
 */
export class EntityNamesRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async claim(name: string, kind: EntityNamesTable['kind'], orgId: string): Promise<void> {
    await this.db.insertInto('entity_names').values({ name, kind, org_id: orgId }).execute();
  }

  async release(orgId: string, name: string): Promise<void> {
    await this.db.deleteFrom('entity_names').where('org_id', '=', orgId).where('name', '=', name).execute();
  }

  async isTaken(name: string): Promise<boolean> {
    return (await this.db.selectFrom('entity_names').select('name').where('name', '=', name).executeTakeFirst()) !== undefined;
  }
}
