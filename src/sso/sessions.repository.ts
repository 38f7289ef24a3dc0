import type { Kysely, Selectable } from 'kysely';
import type { SessionsTable, SsoTables } from './sso.tables.ts';

export type SessionRow = Selectable<SessionsTable>;

/**
 * Storage of browser sessions when there is no Redis (the database store of
 * src/sso/session-store.ts, which owns the session format and the timeouts:
 * this only keeps rows). Sessions belong to the instance, looked up by their
 * id (the signed cookie is the credential), so like the other credential
 * lookups this repository has no tenant.
 */
export class SessionsRepository {
  constructor(private readonly db: Kysely<Pick<SsoTables, 'sessions'>>) {}

  async find(sid: string): Promise<Pick<SessionRow, 'data' | 'expires_at'> | undefined> {
    return this.db.selectFrom('sessions').select(['data', 'expires_at']).where('sid', '=', sid).executeTakeFirst();
  }

  /** Writes a session, created or replaced (express-session saves the whole session each time). */
  async save(row: SessionRow): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values(row)
      .onConflict((oc) => oc.column('sid').doUpdateSet({ data: row.data, user_id: row.user_id, expires_at: row.expires_at }))
      .execute();
  }

  async setExpiry(sid: string, expiresAt: string): Promise<void> {
    await this.db.updateTable('sessions').set({ expires_at: expiresAt }).where('sid', '=', sid).execute();
  }

  async delete(sid: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('sid', '=', sid).execute();
  }

  async deleteOfUser(userId: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async deleteExpired(before: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<', before).execute();
  }
}
