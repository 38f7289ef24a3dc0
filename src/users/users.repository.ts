import type { Kysely, Selectable, Updateable } from 'kysely';
import { keysetPage } from '../db/keyset.ts';
import type { Keyset, Page, PageRequest } from '../db/keyset.ts';
import type { UsersTable, UsersTables } from './users.tables.ts';

export type UserRow = Selectable<UsersTable>;

/** By username: unique across the instance, and never changed. */
const BY_USERNAME: Keyset<UserRow> = { columns: ['username'], direction: 'asc', keyOf: (r) => [r.username] };

/** Users of one organization; every method takes the organization's id. */
export class UsersRepository {
  constructor(private readonly db: Kysely<UsersTables>) {}

  async insert(row: UserRow): Promise<void> {
    await this.db.insertInto('users').values(row).execute();
  }

  async findById(orgId: string, id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  async findByUsername(orgId: string, username: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('username', '=', username).executeTakeFirst();
  }

  async findByEmail(orgId: string, email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('email', '=', email).executeTakeFirst();
  }

  async list(orgId: string, page: PageRequest): Promise<Page<UserRow>> {
    return keysetPage(this.db.selectFrom('users').selectAll().where('org_id', '=', orgId), BY_USERNAME, page);
  }

  async update(orgId: string, id: string, patch: Updateable<UsersTable>): Promise<void> {
    await this.db.updateTable('users').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  async countAdmins(orgId: string): Promise<number> {
    const r = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', 'admin')
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /**
   * Emails are unique across the instance (an identity belongs to one
   * organization), so this one check is deliberately not tenant-scoped; it
   * answers only yes or no.
   */
  async emailTaken(email: string): Promise<boolean> {
    const r = await this.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
    return r !== undefined;
  }
}
