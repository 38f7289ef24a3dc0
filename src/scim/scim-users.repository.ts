import type { Kysely, Selectable } from 'kysely';
import type { TeamsTables } from '../teams/teams.tables.ts';
import type { UsersTable, UsersTables } from '../users/users.tables.ts';
import type { ScimTables, ScimUsersTable } from './scim.tables.ts';

export type ScimUserRow = Selectable<ScimUsersTable>;

/** A person as SCIM sees them: the users row, and what SCIM keeps of them (null columns when SCIM never touched them). */
export type ScimPerson = Selectable<UsersTable> & {
  external_id: string | null;
  given_name: string | null;
  family_name: string | null;
  removed_at: string | null;
  scim_updated_at: string | null;
};

/**
 * What a /Users filter asks, every listed value required at once (`and`): emails compared lower-case
 * (they are stored lower-case), external ids exactly (the IdP's own ids are case-sensitive).
 */
export interface ScimUserCriteria {
  emails?: string[];
  externalIds?: string[];
  ids?: string[];
}

/** A team a person is in, as /Users shows it under `groups`. */
export interface ScimUserGroup {
  user_id: string;
  team_id: string;
  team_name: string;
  /** The IdP's name of a team SCIM owns (scim_groups.display_name), else null. */
  display_name: string | null;
}

type DB = ScimTables & UsersTables & TeamsTables;

/** What SCIM keeps of users (scim_users), and the user lookups SCIM filters need; every method takes the organization's id. */
export class ScimUsersRepository {
  constructor(private readonly db: Kysely<DB>) {}

  private people(orgId: string) {
    return this.db
      .selectFrom('users as u')
      .leftJoin('scim_users as s', (j) => j.onRef('s.user_id', '=', 'u.id').onRef('s.org_id', '=', 'u.org_id'))
      .selectAll('u')
      .select(['s.external_id', 's.given_name', 's.family_name', 's.removed_at', 's.updated_at as scim_updated_at'])
      .where('u.org_id', '=', orgId);
  }

  /** The person with this id in the organization, removed by SCIM or not (the service decides what a removal means). */
  async find(orgId: string, userId: string): Promise<ScimPerson | undefined> {
    return this.people(orgId).where('u.id', '=', userId).executeTakeFirst();
  }

  async findByEmail(orgId: string, email: string): Promise<ScimPerson | undefined> {
    return this.people(orgId).where('u.email', '=', email.toLowerCase()).executeTakeFirst();
  }

  /** The organization's people SCIM did not remove that match every criterion. */
  private matching(orgId: string, criteria: ScimUserCriteria) {
    let q = this.people(orgId).where('s.removed_at', 'is', null);
    for (const e of criteria.emails ?? []) q = q.where('u.email', '=', e.toLowerCase());
    for (const x of criteria.externalIds ?? []) q = q.where('s.external_id', '=', x);
    for (const id of criteria.ids ?? []) q = q.where('u.id', '=', id);
    return q;
  }

  async count(orgId: string, criteria: ScimUserCriteria): Promise<number> {
    const r = await this.matching(orgId, criteria)
      .clearSelect()
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** A page of the matching people, in a stable order (creation, then id), from the 0-based `offset`. */
  async page(orgId: string, criteria: ScimUserCriteria, offset: number, limit: number): Promise<ScimPerson[]> {
    if (limit <= 0) return [];
    return this.matching(orgId, criteria).orderBy('u.created_at').orderBy('u.id').limit(limit).offset(offset).execute();
  }

  /** Whether another person of the organization holds this externalId (it is unique within an organization). */
  async externalIdTaken(orgId: string, externalId: string, exceptUserId: string | null): Promise<boolean> {
    let q = this.db.selectFrom('scim_users').select('user_id').where('org_id', '=', orgId).where('external_id', '=', externalId);
    if (exceptUserId !== null) q = q.where('user_id', '!=', exceptUserId);
    return (await q.executeTakeFirst()) !== undefined;
  }

  /** Writes what SCIM keeps of a person (creates the row on SCIM's first touch). */
  async put(row: ScimUserRow): Promise<void> {
    const { user_id: _id, ...rest } = row;
    await this.db
      .insertInto('scim_users')
      .values(row)
      .onConflict((oc) => oc.column('user_id').doUpdateSet(rest))
      .execute();
  }

  /** The teams of each of these people (one query for a page of /Users). */
  async groupsOf(orgId: string, userIds: readonly string[]): Promise<ScimUserGroup[]> {
    if (userIds.length === 0) return [];
    return this.db
      .selectFrom('team_members as m')
      .innerJoin('teams as t', (j) => j.onRef('t.id', '=', 'm.team_id').onRef('t.org_id', '=', 'm.org_id'))
      .leftJoin('scim_groups as g', (j) => j.onRef('g.team_id', '=', 't.id').onRef('g.org_id', '=', 't.org_id'))
      .select(['m.user_id', 't.id as team_id', 't.name as team_name', 'g.display_name'])
      .where('m.org_id', '=', orgId)
      .where('m.user_id', 'in', [...userIds])
      .orderBy('t.created_at')
      .orderBy('t.id')
      .execute();
  }

  /** Removes a person from every team of the organization (SCIM DELETE); returns the teams they left. */
  async leaveAllTeams(orgId: string, userId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('team_members').select('team_id').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
    if (rows.length) await this.db.deleteFrom('team_members').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
    return rows.map((r) => r.team_id);
  }
}
