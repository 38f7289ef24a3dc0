import type { Kysely, Selectable } from 'kysely';
import type { UsersTables } from '../users/users.tables.ts';
import type { LoginLinksTable, LoginLinksTables } from './login-links.tables.ts';

export type LoginLinkRow = Selectable<LoginLinksTable>;

/** Storage of one-time login links, looked up by the SHA-256 of their token. */
export class LoginLinksRepository {
  constructor(private readonly db: Kysely<LoginLinksTables & UsersTables>) {}

  async insert(row: LoginLinkRow): Promise<void> {
    await this.db.insertInto('login_links').values(row).execute();
  }

  async find(tokenHash: string): Promise<LoginLinkRow | undefined> {
    return this.db.selectFrom('login_links').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /**
   * Marks a link used, in one statement that only succeeds for an unused,
   * unexpired link: of two concurrent uses exactly one gets the row.
   */
  async claim(tokenHash: string, now: string): Promise<LoginLinkRow | undefined> {
    const res = await this.db
      .updateTable('login_links')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    return this.find(tokenHash);
  }

  async deleteExpired(before: string): Promise<void> {
    await this.db.deleteFrom('login_links').where('expires_at', '<', before).execute();
  }

  /**
   * The person an operator names by email. Emails are unique across the
   * instance, and the operator's CLI is not scoped to one organization, so
   * this lookup deliberately is not either.
   */
  async userByEmail(email: string): Promise<{ id: string; org_id: string } | undefined> {
    return this.db.selectFrom('users').select(['id', 'org_id']).where('email', '=', email).executeTakeFirst();
  }
}
