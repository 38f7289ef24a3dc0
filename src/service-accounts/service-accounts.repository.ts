import type { Kysely, Selectable, Updateable } from 'kysely';
import { keysetPage } from '../db/keyset.ts';
import type { Keyset, Page, PageRequest } from '../db/keyset.ts';
import type { TeamsTables } from '../teams/teams.tables.ts';
import type { ServiceAccountsTable, ServiceAccountsTables } from './service-accounts.tables.ts';

export type ServiceAccountRow = Selectable<ServiceAccountsTable>;
export type ServiceAccountWithTeam = ServiceAccountRow & { team_name: string };

/** By username: unique across the instance, and never changed. */
const BY_USERNAME: Keyset<ServiceAccountWithTeam> = { columns: ['s.username'], direction: 'asc', keyOf: (r) => [r.username] };

/** Service accounts of one organization; every method takes the organization's id. */
export class ServiceAccountsRepository {
  constructor(private readonly db: Kysely<ServiceAccountsTables & TeamsTables>) {}

  async insert(row: ServiceAccountRow): Promise<void> {
    await this.db.insertInto('service_accounts').values(row).execute();
  }

  private withTeam() {
    return this.db
      .selectFrom('service_accounts as s')
      .innerJoin('teams as t', (j) => j.onRef('t.id', '=', 's.team_id').onRef('t.org_id', '=', 's.org_id'))
      .selectAll('s')
      .select('t.name as team_name');
  }

  async findById(orgId: string, id: string): Promise<ServiceAccountWithTeam | undefined> {
    return this.withTeam().where('s.org_id', '=', orgId).where('s.id', '=', id).executeTakeFirst();
  }

  async list(orgId: string, filter: { teamId?: string }, page: PageRequest): Promise<Page<ServiceAccountWithTeam>> {
    let q = this.withTeam().where('s.org_id', '=', orgId);
    if (filter.teamId !== undefined) q = q.where('s.team_id', '=', filter.teamId);
    return keysetPage(q, BY_USERNAME, page);
  }

  async update(orgId: string, id: string, patch: Updateable<ServiceAccountsTable>): Promise<void> {
    await this.db.updateTable('service_accounts').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('service_accounts').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
