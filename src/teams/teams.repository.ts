import type { Kysely, Selectable } from 'kysely';
import { keysetPage } from '../db/keyset.ts';
import type { Keyset, Page, PageRequest } from '../db/keyset.ts';
import type { UsersTables } from '../users/users.tables.ts';
import type { TeamMembersTable, TeamsTable, TeamsTables } from './teams.tables.ts';
import type { TeamRole } from '../auth/principal.ts';

export type TeamRow = Selectable<TeamsTable>;
export type TeamMemberRow = Selectable<TeamMembersTable>;
export interface TeamMemberView {
  user_id: string;
  username: string;
  email: string;
  display_name: string;
  role: TeamRole;
  created_at: string;
}

/** Teams by name, members by username: both unique across the instance, and never changed. */
const TEAMS_BY_NAME: Keyset<TeamRow> = { columns: ['name'], direction: 'asc', keyOf: (r) => [r.name] };
const MEMBERS_BY_USERNAME: Keyset<TeamMemberView> = { columns: ['u.username'], direction: 'asc', keyOf: (r) => [r.username] };

/** Teams and memberships of one organization; every method takes the organization's id. */
export class TeamsRepository {
  constructor(private readonly db: Kysely<TeamsTables & UsersTables>) {}

  async insert(row: TeamRow): Promise<void> {
    await this.db.insertInto('teams').values(row).execute();
  }

  async findByName(orgId: string, name: string): Promise<TeamRow | undefined> {
    return this.db.selectFrom('teams').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  }

  async findById(orgId: string, id: string): Promise<TeamRow | undefined> {
    return this.db.selectFrom('teams').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  async list(orgId: string, page: PageRequest): Promise<Page<TeamRow>> {
    return keysetPage(this.db.selectFrom('teams').selectAll().where('org_id', '=', orgId), TEAMS_BY_NAME, page);
  }

  private members(orgId: string, teamId: string) {
    return this.db
      .selectFrom('team_members as m')
      .innerJoin('users as u', (j) => j.onRef('u.id', '=', 'm.user_id').onRef('u.org_id', '=', 'm.org_id'))
      .select(['m.user_id', 'u.username', 'u.email', 'u.display_name', 'm.role', 'm.created_at'])
      .where('m.org_id', '=', orgId)
      .where('m.team_id', '=', teamId);
  }

  async listMembers(orgId: string, teamId: string, page: PageRequest): Promise<Page<TeamMemberView>> {
    return keysetPage(this.members(orgId, teamId), MEMBERS_BY_USERNAME, page);
  }

  async findMember(orgId: string, teamId: string, username: string): Promise<TeamMemberView | undefined> {
    return this.members(orgId, teamId).where('u.username', '=', username).executeTakeFirst();
  }

  async countAdmins(orgId: string, teamId: string): Promise<number> {
    const r = await this.db
      .selectFrom('team_members')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('org_id', '=', orgId)
      .where('team_id', '=', teamId)
      .where('role', '=', 'admin')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async getMember(orgId: string, teamId: string, userId: string): Promise<TeamMemberRow | undefined> {
    return this.db
      .selectFrom('team_members')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('team_id', '=', teamId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  async putMember(orgId: string, teamId: string, userId: string, role: TeamRole, now: string): Promise<'created' | 'updated'> {
    // A few rounds at most: each one that finds nothing to update saw a concurrent removal commit.
    for (let round = 0; ; round++) {
      if (!(await this.getMember(orgId, teamId, userId))) {
        // Two transactions adding the same member at once both find no row (PostgreSQL's read committed): the
        // later insert waits for the earlier and then updates its row instead of failing on the primary key.
        const r = await this.db
          .insertInto('team_members')
          .values({ org_id: orgId, team_id: teamId, user_id: userId, role, created_at: now })
          .onConflict((oc) => oc.columns(['team_id', 'user_id']).doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) return 'created';
      }
      const u = await this.db.updateTable('team_members').set({ role }).where('org_id', '=', orgId).where('team_id', '=', teamId).where('user_id', '=', userId).executeTakeFirst();
      if (Number(u.numUpdatedRows) > 0 || round >= 3) return 'updated';
      // The row seen a moment ago was removed by a transaction that committed meanwhile (the update waited
      // for it, then found nothing): look again, and add the member back.
    }
  }

  async removeMember(orgId: string, teamId: string, userId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('team_members').where('org_id', '=', orgId).where('team_id', '=', teamId).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** The teams a user belongs to, with their role in each. */
  async teamsOfUser(orgId: string, userId: string): Promise<Array<{ name: string; role: TeamRole }>> {
    return this.db
      .selectFrom('team_members as m')
      .innerJoin('teams as t', 't.id', 'm.team_id')
      .select(['t.name', 'm.role'])
      .where('m.org_id', '=', orgId)
      .where('m.user_id', '=', userId)
      .orderBy('t.name')
      .execute();
  }

  async delete(orgId: string, teamId: string): Promise<void> {
    await this.db.deleteFrom('team_members').where('org_id', '=', orgId).where('team_id', '=', teamId).execute();
    await this.db.deleteFrom('teams').where('org_id', '=', orgId).where('id', '=', teamId).execute();
  }
}
