import type { Actor } from '../auth/actor.ts';
import { ROLE_RANK } from '../auth/actor.ts';
import type { OrgRole } from '../auth/principal.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { OrgRow, OrgsRepository } from './orgs.repository.ts';

/**
 * What access re-reads on every call. Of users and service accounts only the fields it needs, declared
 * by shape: those features depend on this one, not the reverse (src/storage.ts passes their repositories).
 */
export interface OrgAccessRepos {
  orgs: OrgsRepository;
  users: { findById(orgId: string, id: string): Promise<{ status: string; instance_admin: number; role: OrgRole } | undefined> };
  serviceAccounts: { findById(orgId: string, id: string): Promise<{ team_id: string } | undefined> };
}

export interface OrgContext {
  org: OrgRow;
  /** The actor's current role in this organization, read from the database, or null (service accounts). */
  role: OrgRole | null;
  /**
   * The one team the actor may see, by id, or null when it may see every team of the organization (people).
   * A service account's world is its team: that team (an organization-scoped account's default team, the
   * one it writes to), the usernames of its members (for X-WANDB-USERNAME attribution), and nothing else.
   */
  onlyTeamId: string | null;
}

/**
 * Which organization an actor may see, and as what. An organization the actor
 * does not belong to does not exist for it (404), unless the actor is the
 * instance's operator. Roles are re-read here rather than trusted from the
 * cached principal, so a demotion takes effect on the next management call.
 *
 * A service account has no role: the organization-wide parts (users, audit,
 * SSO, keys, service accounts) answer 403 whatever the path names, so they
 * tell it nothing; of the teams it sees only its own (onlyTeamId, enforced by
 * the teams service), and another team answers 404 as if it did not exist.
 * An organization-scoped account is scoped the same way to its default team:
 * writing runs there is all it is for.
 */
export class OrgAccess {
  constructor(private readonly store: Store<OrgAccessRepos>) {}

  async resolve(actor: Actor, slug: string): Promise<OrgContext> {
    const p = actor.principal;
    const org = await this.store.repos.orgs.findBySlug(slug);
    if (!org) throw errors.notFound(`organization "${slug}"`);
    let role: OrgRole | null = null;
    let instanceAdmin = false;
    let onlyTeamId: string | null = null;
    if (p.type === 'service_account' && org.id === p.orgId) {
      // Re-read, like a role: the team the account belongs to now, not the one its cached principal names.
      const sa = await this.store.repos.serviceAccounts.findById(p.orgId, p.id);
      if (!sa) throw errors.unauthenticated('this service account no longer exists', 'account_deactivated');
      onlyTeamId = sa.team_id;
    }
    if (p.type === 'user') {
      const me = await this.store.repos.users.findById(p.orgId, p.id);
      if (!me || me.status !== 'active') throw errors.unauthenticated('this account is deactivated', 'account_deactivated');
      instanceAdmin = me.instance_admin === 1;
      if (org.id === p.orgId) role = me.role;
    }
    if (org.id !== p.orgId && !instanceAdmin) throw errors.notFound(`organization "${slug}"`);
    if (instanceAdmin) role = 'admin';
    return { org, role, onlyTeamId };
  }

  async require(actor: Actor, slug: string, minimum: OrgRole): Promise<OrgContext> {
    const ctx = await this.resolve(actor, slug);
    OrgAccess.check(ctx.role, minimum, actor);
    return ctx;
  }

  /** The actor's organization (the one its credential belongs to), with its current role. */
  async own(actor: Actor, minimum?: OrgRole): Promise<OrgContext> {
    const ctx = await this.resolve(actor, actor.principal.orgSlug);
    if (minimum) OrgAccess.check(ctx.role, minimum, actor);
    return ctx;
  }

  /** Whether the actor may see this team of the organization (a service account: its own team only). */
  static seesTeam(ctx: OrgContext, teamId: string): boolean {
    return ctx.onlyTeamId === null || ctx.onlyTeamId === teamId;
  }

  /**
   * Whether the actor may see people's email addresses. A service account may not: it attributes runs by
   * username, and a script holding its key (often in CI, readable by many) has no need of a team's addresses.
   */
  static seesEmails(ctx: OrgContext): boolean {
    return ctx.onlyTeamId === null;
  }

  static check(role: OrgRole | null, minimum: OrgRole, actor: Actor): void {
    if (role === null) {
      throw errors.forbidden(actor.principal.type === 'service_account' ? 'service accounts cannot use this part of the management API' : 'you are not a member of this organization');
    }
    if (ROLE_RANK[role] < ROLE_RANK[minimum]) {
      throw errors.forbidden(`this needs the organization role "${minimum}" or higher; you are "${role}"`, 'insufficient_role');
    }
  }
}
