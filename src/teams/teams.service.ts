import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import { ROLE_RANK } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { TeamRole } from '../auth/principal.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { KeyValue, Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { AppError } from '../errors/app-error.ts';
import { OrgAccess } from '../orgs/org-access.ts';
import type { OrgContext } from '../orgs/org-access.ts';
import type { EntityNamesRepository } from '../users/entity-names.repository.ts';
import { requireClaimableName } from '../users/entity-names.ts';
import type { UsersRepository } from '../users/users.repository.ts';
import type { TeamMemberView, TeamRow, TeamsRepository } from './teams.repository.ts';
import type { memberOut as memberSchema, teamOut } from './teams.responses.ts';

/**
 * Which teams the organization's IdP owns through SCIM (src/scim implements it on scim_groups). Declared
 * here so that the team rules and SSO's group sync can ask without depending on the SCIM feature (which
 * depends on them).
 */
export interface TeamOwnership {
  isScimOwned(orgId: string, teamId: string): Promise<boolean>;
}

/** What the team rules touch, in one transaction with their audit events. */
export interface TeamsRepos extends InvalidationRepos {
  teams: TeamsRepository;
  users: UsersRepository;
  entities: EntityNamesRepository;
  audit: AuditRepository;
  scimGroups: TeamOwnership;
}

/** Members of a SCIM-owned team are the IdP's: the API and pages neither add nor remove them (their roles stay the admins'). */
function managedByScim(team: string): AppError {
  return errors.conflict(`the members of team "${team}" are managed by your IdP through SCIM: add or remove them there (an admin may still change a member's role here)`, 'team_managed_by_scim');
}

/** A member as the caller may see them: no email address for a service account (OrgAccess.seesEmails). */
export type TeamMemberOut = z.output<typeof memberSchema>;

function memberOut(ctx: OrgContext, m: TeamMemberView): TeamMemberOut {
  return OrgAccess.seesEmails(ctx) ? m : { ...m, email: null };
}

/** The API's answer about a team: its response schema's type, so that the two cannot drift. */
export type TeamView = z.output<typeof teamOut>;

export class TeamsService {
  constructor(
    private readonly store: Store<TeamsRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  private view(t: TeamRow, orgSlug: string): TeamView {
    return { id: t.id, name: t.name, org: orgSlug, created_at: t.created_at };
  }

  async create(actor: Actor, slug: string, name: string): Promise<TeamView> {
    const { org } = await this.access.require(actor, slug, 'member');
    const now = new Date().toISOString();
    const row: TeamRow = { id: randomUUID(), org_id: org.id, name, created_at: now };
    try {
      await this.invalidator.transaction(this.store, async (repos, invalidate) => {
        await requireClaimableName(repos, name, org.id, 'name_taken');
        await repos.entities.claim(name, 'team', org.id);
        await repos.teams.insert(row);
        // Whoever creates a team administers it.
        if (actor.principal.type === 'user' && actor.principal.orgId === org.id) {
          await repos.teams.putMember(org.id, row.id, actor.principal.id, 'admin', now);
        }
        await this.audit.record(repos, actor, { orgId: org.id, action: 'team.create', targetType: 'team', targetId: row.id, targetName: name });
        invalidate.all();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw errors.conflict(`the name "${name}" is already taken by a user, team or service account`, 'name_taken');
      throw err;
    }
    return this.view(row, org.slug);
  }

  async list(actor: Actor, slug: string, page: PageRequest): Promise<Page<TeamView>> {
    const ctx = await this.access.resolve(actor, slug);
    if (ctx.onlyTeamId !== null) {
      // A service account: its own team is the only one there is for it.
      const own = await this.store.repos.teams.findById(ctx.org.id, ctx.onlyTeamId);
      return { items: own ? [this.view(own, ctx.org.slug)] : [], next: null };
    }
    OrgAccess.check(ctx.role, 'viewer', actor);
    const { org } = ctx;
    const rows = await this.store.repos.teams.list(org.id, page);
    return { items: rows.items.map((t) => this.view(t, org.slug)), next: rows.next };
  }

  /**
   * A team by name, in the actor's own organization. Team names are unique
   * across the instance, but a team of another organization answers 404, and
   * so does, for a service account, any team but its own.
   */
  async resolveTeam(actor: Actor): Promise<OrgContext>;
  async resolveTeam(actor: Actor, name: string): Promise<OrgContext & { team: TeamRow; teamRole: TeamRole | null }>;
  async resolveTeam(actor: Actor, name?: string) {
    const ctx = await this.access.own(actor);
    if (name === undefined) return ctx;
    const team = await this.store.repos.teams.findByName(ctx.org.id, name);
    if (!team || !OrgAccess.seesTeam(ctx, team.id)) throw errors.notFound(`team "${name}"`);
    let teamRole: TeamRole | null = null;
    if (actor.principal.type === 'user') teamRole = (await this.store.repos.teams.getMember(ctx.org.id, team.id, actor.principal.id))?.role ?? null;
    return { ...ctx, team, teamRole };
  }

  /** Org admins and the team's admins manage its membership. */
  private canManage(ctx: { role: string | null; teamRole: TeamRole | null }): boolean {
    return ctx.role === 'admin' || ctx.teamRole === 'admin';
  }

  /**
   * The actor's role in a team, whether they may manage its members, and whether SCIM owns the team
   * (then members are neither added nor removed here): what the team page offers; the changes check it again.
   */
  async accessTo(actor: Actor, name: string): Promise<{ teamRole: TeamRole | null; canManage: boolean; scimManaged: boolean }> {
    const ctx = await this.resolveTeam(actor, name);
    return { teamRole: ctx.teamRole, canManage: this.canManage(ctx), scimManaged: await this.store.repos.scimGroups.isScimOwned(ctx.org.id, ctx.team.id) };
  }

  /** A team and a page of its members (`members_next`: where the next page starts, null on the last). */
  async get(actor: Actor, name: string, page: PageRequest): Promise<TeamView & { members: TeamMemberOut[]; members_next: KeyValue[] | null }> {
    const ctx = await this.resolveTeam(actor, name);
    if (ctx.role === null && actor.principal.type !== 'service_account') throw errors.forbidden('you are not a member of this organization');
    const members = await this.store.repos.teams.listMembers(ctx.org.id, ctx.team.id, page);
    return { ...this.view(ctx.team, ctx.org.slug), members: members.items.map((m) => memberOut(ctx, m)), members_next: members.next };
  }

  async getMember(actor: Actor, name: string, username: string): Promise<TeamMemberOut> {
    const ctx = await this.resolveTeam(actor, name);
    const m = await this.store.repos.teams.findMember(ctx.org.id, ctx.team.id, username);
    if (!m) throw errors.notFound(`member "${username}" of team "${name}"`);
    return memberOut(ctx, m);
  }

  async putMember(actor: Actor, name: string, username: string, role: TeamRole): Promise<{ member: TeamMemberView; created: boolean }> {
    const ctx = await this.resolveTeam(actor, name);
    if (!this.canManage(ctx)) throw errors.forbidden('only an organization admin or an admin of this team can change its members', 'insufficient_role');
    const result = await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      const user = await repos.users.findByUsername(ctx.org.id, username);
      if (!user) throw errors.notFound(`user "${username}"`);
      if (user.status !== 'active') throw errors.conflict(`user "${username}" is deactivated`, 'user_deactivated');
      const existing = await repos.teams.getMember(ctx.org.id, ctx.team.id, user.id);
      // Only adding a person is SCIM's: changing an existing member's role stays the admins' (SCIM has no roles).
      if (!existing && (await repos.scimGroups.isScimOwned(ctx.org.id, ctx.team.id))) throw managedByScim(ctx.team.name);
      if (existing?.role === 'admin' && role !== 'admin' && (await repos.teams.countAdmins(ctx.org.id, ctx.team.id)) <= 1 && ctx.role !== 'admin') {
        throw errors.conflict('a team must keep at least one admin', 'last_team_admin');
      }
      const outcome = await repos.teams.putMember(ctx.org.id, ctx.team.id, user.id, role, new Date().toISOString());
      await this.audit.record(repos, actor, {
        orgId: ctx.org.id,
        action: outcome === 'created' ? 'team.member.add' : 'team.member.update',
        targetType: 'team',
        targetId: ctx.team.id,
        targetName: ctx.team.name,
        details: { username, role, previous_role: existing?.role ?? null },
      });
      const member = await repos.teams.findMember(ctx.org.id, ctx.team.id, username);
      if (!member) throw new Error(`team ${ctx.team.id}: member ${username} not found right after it was written`);
      invalidate.all();
      return { outcome, member };
    });
    return { member: result.member, created: result.outcome === 'created' };
  }

  async removeMember(actor: Actor, name: string, username: string): Promise<void> {
    const ctx = await this.resolveTeam(actor, name);
    const self = actor.principal.type === 'user' && actor.principal.username === username;
    if (!this.canManage(ctx) && !self) throw errors.forbidden('only an organization admin or an admin of this team can remove its members', 'insufficient_role');
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      // Leaving included: the IdP would only put the person back at its next sync.
      if (await repos.scimGroups.isScimOwned(ctx.org.id, ctx.team.id)) throw managedByScim(ctx.team.name);
      const user = await repos.users.findByUsername(ctx.org.id, username);
      if (!user) throw errors.notFound(`member "${username}" of team "${name}"`);
      if (!(await repos.teams.removeMember(ctx.org.id, ctx.team.id, user.id))) throw errors.notFound(`member "${username}" of team "${name}"`);
      await this.audit.record(repos, actor, { orgId: ctx.org.id, action: 'team.member.remove', targetType: 'team', targetId: ctx.team.id, targetName: ctx.team.name, details: { username } });
      invalidate.all();
    });
  }

  static atLeast(role: TeamRole | null, minimum: TeamRole): boolean {
    return role !== null && ROLE_RANK[role] >= ROLE_RANK[minimum];
  }
}
