import type { Kysely, Selectable } from 'kysely';
import type { LeakedCredentialsTable, SecretScanningTables } from './secret-scanning.tables.ts';

export type LeakedCredentialRow = Selectable<LeakedCredentialsTable>;

/**
 * Of the service accounts' table, the columns a team's notices are found by: declared by shape, since
 * src/service-accounts is below this feature and knows nothing of it.
 */
interface ServiceAccountTeamTables {
  service_accounts: { id: string; org_id: string; team_id: string; username: string };
}

/** A notice with the name of the service account it is about (null for a person's). */
export type LeakedCredentialNoticeRow = LeakedCredentialRow & { service_account_username: string | null };

/** Notices shown on a page at most: a page lists the newest (a person has a handful of keys). */
const NOTICES_SHOWN = 50;

/** Leaked-credential notices. Every method takes the organization's id and filters by it. */
export class LeakedCredentialsRepository {
  constructor(private readonly db: Kysely<SecretScanningTables & ServiceAccountTeamTables>) {}

  async insert(row: LeakedCredentialRow): Promise<void> {
    await this.db.insertInto('leaked_credentials').values(row).execute();
  }

  private notices() {
    return this.db
      .selectFrom('leaked_credentials as l')
      .leftJoin('service_accounts as s', (j) => j.onRef('s.id', '=', 'l.service_account_id').onRef('s.org_id', '=', 'l.org_id'))
      .selectAll('l')
      .select('s.username as service_account_username')
      .where('l.dismissed_at', 'is', null);
  }

  /** The notices (not dismissed) of a person's credentials, newest first. */
  async listForUser(orgId: string, userId: string): Promise<LeakedCredentialNoticeRow[]> {
    return this.notices().where('l.org_id', '=', orgId).where('l.user_id', '=', userId).orderBy('l.reported_at', 'desc').orderBy('l.id').limit(NOTICES_SHOWN).execute();
  }

  /** The notices (not dismissed) of one service account's credentials, newest first. */
  async listForServiceAccount(orgId: string, serviceAccountId: string): Promise<LeakedCredentialNoticeRow[]> {
    return this.notices().where('l.org_id', '=', orgId).where('l.service_account_id', '=', serviceAccountId).orderBy('l.reported_at', 'desc').orderBy('l.id').limit(NOTICES_SHOWN).execute();
  }

  /** The notices (not dismissed) of the credentials of a team's service accounts, newest first. */
  async listForTeam(orgId: string, teamId: string): Promise<LeakedCredentialNoticeRow[]> {
    return this.notices().where('l.org_id', '=', orgId).where('s.team_id', '=', teamId).orderBy('l.reported_at', 'desc').orderBy('l.id').limit(NOTICES_SHOWN).execute();
  }

  /** Dismisses a person's notice; false when there is no such notice of theirs (or it was dismissed already). */
  async dismissForUser(orgId: string, userId: string, id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('leaked_credentials')
      .set({ dismissed_at: at })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('dismissed_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Dismisses the notice of a credential of one of the team's service accounts; false when there is no such notice. */
  async dismissForTeam(orgId: string, teamId: string, id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('leaked_credentials')
      .set({ dismissed_at: at })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('dismissed_at', 'is', null)
      .where('service_account_id', 'in', (eb) => eb.selectFrom('service_accounts').select('id').where('org_id', '=', orgId).where('team_id', '=', teamId))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}
