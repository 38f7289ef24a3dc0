import type { Kysely, Selectable } from 'kysely';
import type { UsersTables } from '../users/users.tables.ts';
import type { ScimTables, ScimUsersTable } from './scim.tables.ts';

export type ScimUserRow = Selectable<ScimUsersTable>;

/** What SCIM keeps of users (scim_users), and the user lookups SCIM filters need; every method takes the organization's id. */
export class ScimUsersRepository {
  constructor(private readonly db: Kysely<ScimTables & UsersTables>) {}
}
