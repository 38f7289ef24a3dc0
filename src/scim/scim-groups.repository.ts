import type { Kysely, Selectable } from 'kysely';
import type { TeamsTables } from '../teams/teams.tables.ts';
import type { ScimGroupsTable, ScimTables } from './scim.tables.ts';

export type ScimGroupRow = Selectable<ScimGroupsTable>;

/** Which teams SCIM owns (scim_groups), and the team lookups SCIM filters need; every method takes the organization's id. */
export class ScimGroupsRepository {
  constructor(private readonly db: Kysely<ScimTables & TeamsTables>) {}
}
