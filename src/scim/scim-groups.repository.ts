import type { Kysely, Selectable, Updateable } from 'kysely';
import type { OrgsTables } from '../orgs/orgs.tables.ts';
import type { ServiceAccountsTables } from '../service-accounts/service-accounts.tables.ts';
import type { TeamOwnership } from '../teams/teams.service.ts';
import type { TeamsTables } from '../teams/teams.tables.ts';
import type { UsersTables } from '../users/users.tables.ts';
import type { ScimGroupsTable, ScimTables } from './scim.tables.ts';

export type ScimGroupRow = Selectable<ScimGroupsTable>;

type Tables = ScimTables & TeamsTables & UsersTables & ServiceAccountsTables & OrgsTables;

/** A team as SCIM sees it: the team, and its scim_groups row when SCIM owns it (display_name null otherwise). */
export interface ScimGroupTeam {
  id: string;
  name: string;
  created_at: string;
  /** The group's name at the IdP (SCIM-owned teams), else null: the team's name stands for it. */
  display_name: string | null;
  external_id: string | null;
  /** When SCIM last changed it (SCIM-owned teams), else null. */
  updated_at: string | null;
}

/** What GET /Groups may filter on (already parsed; all given ones must hold). */
export interface ScimGroupFilter {
  /** Compared case-insensitively with the SCIM display name of SCIM-owned teams and the name of the others. */
  displayName?: string;
  /** Case-sensitive. */
  externalId?: string;
  id?: string;
}

/** A member as a Group resource lists it: people only (team_members rows). */
export interface ScimGroupMember {
  team_id: string;
  user_id: string;
  username: string;
}

/** What changes a group's version besides its own row: its membership, summed up cheaply. */
export interface MembershipStamp {
  team_id: string;
  count: number;
  last_added: string | null;
}

/**
 * Which teams SCIM owns (scim_groups), and the team lookups SCIM filters need; every method takes the
 * organization's id. Implements the teams feature's TeamOwnership (the teams and SSO rules ask it).
 */
export class ScimGroupsRepository implements TeamOwnership {
  constructor(private readonly db: Kysely<Tables>) {}

  /** The organization's teams (with their scim_groups row, if any) matching `filter`; select what you need. */
  private matching(orgId: string, filter: ScimGroupFilter) {
    let q = this.db
      .selectFrom('teams as t')
      .leftJoin('scim_groups as g', (j) => j.onRef('g.team_id', '=', 't.id').onRef('g.org_id', '=', 't.org_id'))
      .where('t.org_id', '=', orgId);
    if (filter.id !== undefined) q = q.where('t.id', '=', filter.id);
    if (filter.externalId !== undefined) q = q.where('g.external_id', '=', filter.externalId);
    const displayName = filter.displayName;
    if (displayName !== undefined) {
      // The exact string, or equal once both are lower-cased by the database (SQLite's lower() folds
      // ASCII only: a non-ASCII name still matches when its case is the same).
      q = q.where((eb) => {
        const shown = eb.fn.coalesce('g.display_name', 't.name');
        return eb.or([eb(shown, '=', displayName), eb(eb.fn('lower', [shown]), '=', eb.fn('lower', [eb.val(displayName)]))]);
      });
    }
    return q;
  }

  private teams(orgId: string, filter: ScimGroupFilter) {
    return this.matching(orgId, filter).select(['t.id', 't.name', 't.created_at', 'g.display_name', 'g.external_id', 'g.updated_at']);
  }

  async find(orgId: string, teamId: string): Promise<ScimGroupTeam | undefined> {
    return this.teams(orgId, { id: teamId }).executeTakeFirst();
  }

  /** A page of the organization's teams matching `filter`, in a stable order (creation, then id), and how many match in all. */
  async list(orgId: string, filter: ScimGroupFilter, offset: number, limit: number): Promise<{ total: number; rows: ScimGroupTeam[] }> {
    const counted = await this.matching(orgId, filter).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const total = Number(counted.n);
    if (limit === 0 || offset >= total) return { total, rows: [] };
    const rows = await this.teams(orgId, filter).orderBy('t.created_at').orderBy('t.id').limit(limit).offset(offset).execute();
    return { total, rows };
  }

  /** Another team of the organization already shown under this display name (case-insensitively), if any. */
  async findByDisplayName(orgId: string, displayName: string, exceptTeamId?: string): Promise<ScimGroupTeam | undefined> {
    let q = this.teams(orgId, { displayName });
    if (exceptTeamId !== undefined) q = q.where('t.id', '<>', exceptTeamId);
    return q.executeTakeFirst();
  }

  async isScimOwned(orgId: string, teamId: string): Promise<boolean> {
    const r = await this.db.selectFrom('scim_groups').select('team_id').where('org_id', '=', orgId).where('team_id', '=', teamId).executeTakeFirst();
    return r !== undefined;
  }

  /**
   * Takes the team's row lock until the transaction ends, so that two SCIM changes of one group run one
   * after the other (each reads the membership the other wrote). A no-op update locks the row on
   * PostgreSQL; SQLite transactions hold the write lock already. False: no such team in the organization.
   */
  async lockTeam(orgId: string, teamId: string): Promise<boolean> {
    const r = await this.db.updateTable('teams').set((eb) => ({ name: eb.ref('name') })).where('org_id', '=', orgId).where('id', '=', teamId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Takes the organization's row lock: group creations and renames of one organization in turn (display names stay unique). */
  async lockOrg(orgId: string): Promise<void> {
    await this.db.updateTable('orgs').set((eb) => ({ slug: eb.ref('slug') })).where('id', '=', orgId).execute();
  }

  async insert(row: ScimGroupRow): Promise<void> {
    await this.db.insertInto('scim_groups').values(row).execute();
  }

  async update(orgId: string, teamId: string, patch: Pick<Updateable<ScimGroupsTable>, 'display_name' | 'external_id' | 'updated_at'>): Promise<void> {
    await this.db.updateTable('scim_groups').set(patch).where('org_id', '=', orgId).where('team_id', '=', teamId).execute();
  }

  async delete(orgId: string, teamId: string): Promise<void> {
    await this.db.deleteFrom('scim_groups').where('org_id', '=', orgId).where('team_id', '=', teamId).execute();
  }

  /** The ids of the people in a team (not their roles: SCIM has none). */
  async memberIds(orgId: string, teamId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('team_members').select('user_id').where('org_id', '=', orgId).where('team_id', '=', teamId).execute();
    return rows.map((r) => r.user_id);
  }

  /** The members of some teams (a page of groups), by username. */
  async membersOf(orgId: string, teamIds: readonly string[]): Promise<ScimGroupMember[]> {
    if (teamIds.length === 0) return [];
    return this.db
      .selectFrom('team_members as m')
      .innerJoin('users as u', (j) => j.onRef('u.id', '=', 'm.user_id').onRef('u.org_id', '=', 'm.org_id'))
      .select(['m.team_id', 'm.user_id', 'u.username'])
      .where('m.org_id', '=', orgId)
      .where('m.team_id', 'in', teamIds)
      .orderBy('u.username')
      .execute();
  }

  /** Per team: how many members and when the newest joined (part of a group's version: SCIM sees members, not roles). */
  async membershipStamps(orgId: string, teamIds: readonly string[]): Promise<MembershipStamp[]> {
    if (teamIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('team_members')
      .select((eb) => ['team_id', eb.fn.countAll().as('n'), eb.fn.max('created_at').as('last')])
      .where('org_id', '=', orgId)
      .where('team_id', 'in', teamIds)
      .groupBy('team_id')
      .execute();
    return rows.map((r) => ({ team_id: r.team_id, count: Number(r.n), last_added: r.last }));
  }

  /**
   * Of `ids`, the people SCIM may put in a team of the organization: its users that SCIM has not removed
   * (deactivated ones included: an IdP keeps suspended people in their groups). Anything else (another
   * organization's user, a service account, an unknown id) is simply not returned.
   */
  async eligibleUsers(orgId: string, ids: readonly string[]): Promise<Array<{ id: string; username: string }>> {
    if (ids.length === 0) return [];
    const out: Array<{ id: string; username: string }> = [];
    // Chunks: an IdP's replace of a big group's members must not exceed a statement's parameter limit.
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      out.push(
        ...(await this.db
          .selectFrom('users as u')
          .leftJoin('scim_users as s', (j) => j.onRef('s.user_id', '=', 'u.id').onRef('s.org_id', '=', 'u.org_id'))
          .select(['u.id', 'u.username'])
          .where('u.org_id', '=', orgId)
          .where('u.id', 'in', chunk)
          .where('s.removed_at', 'is', null)
          .execute()),
      );
    }
    return out;
  }

  /** Usernames of some users of the organization (for the audit of removals). */
  async usernames(orgId: string, ids: readonly string[]): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('users').select(['id', 'username']).where('org_id', '=', orgId).where('id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) map.set(r.id, r.username);
    }
    return map;
  }

  async countServiceAccounts(orgId: string, teamId: string): Promise<number> {
    const r = await this.db.selectFrom('service_accounts').select((eb) => eb.fn.countAll().as('n')).where('org_id', '=', orgId).where('team_id', '=', teamId).executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
