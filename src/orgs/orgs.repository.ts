import type { Kysely, Selectable, Updateable } from 'kysely';
import type { OrgsTable, OrgsTables } from './orgs.tables.ts';

export type OrgRow = Selectable<OrgsTable>;

export class OrgsRepository {
  constructor(private readonly db: Kysely<OrgsTables>) {}

  async insert(row: OrgRow): Promise<void> {
    await this.db.insertInto('orgs').values(row).execute();
  }

  async findBySlug(slug: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('orgs').selectAll().where('slug', '=', slug).executeTakeFirst();
  }

  async findById(id: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async update(id: string, patch: Updateable<OrgsTable>): Promise<void> {
    await this.db.updateTable('orgs').set(patch).where('id', '=', id).execute();
  }

  async list(): Promise<OrgRow[]> {
    return this.db.selectFrom('orgs').selectAll().orderBy('slug').execute();
  }
}
