import type { Actor } from '../auth/actor.ts';
import { ROLE_RANK } from '../auth/actor.ts';
import type { OrgRole } from '../auth/principal.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../http/errors.ts';
import type { OrgRow } from './orgs.repository.ts';

export interface OrgContext {
  org: OrgRow;
  /** The actor's current role in this organization, read from the database, or null (service accounts). */
  role: OrgRole | null;
}

/**
 * Which organization an actor may see, and as what. An organization the actor
 * does not belong to does not exist for it (404), unless the actor is the
 * instance's operator. Roles are re-read here rather than trusted from the
 * cached principal, so a demotion takes effect on the next management call.
 */
export class OrgAccess {
  constructor(private readonly store: Store) {}

  async resolve(actor: Actor, slug: string): Promise<OrgContext> {
    const p = actor.principal;
    const org = await this.store.repos.orgs.findBySlug(slug);
    if (!org) throw errors.notFound(`organization "${slug}"`);
    let role: OrgRole | null = null;
    let instanceAdmin = false;
    if (p.type === 'user') {
      const me = await this.store.repos.users.findById(p.orgId, p.id);
      if (!me || me.status !== 'active') throw errors.unauthenticated('this account is deactivated', 'account_deactivated');
      instanceAdmin = me.instance_admin === 1;
      if (org.id === p.orgId) role = me.role;
    }
    if (org.id !== p.orgId && !instanceAdmin) throw errors.notFound(`organization "${slug}"`);
    if (instanceAdmin) role = 'admin';
    return { org, role };
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

  static check(role: OrgRole | null, minimum: OrgRole, actor: Actor): void {
    if (role === null) {
      throw errors.forbidden(actor.principal.type === 'service_account' ? 'service accounts cannot use this part of the management API' : 'you are not a member of this organization');
    }
    if (ROLE_RANK[role] < ROLE_RANK[minimum]) {
      throw errors.forbidden(`this needs the organization role "${minimum}" or higher; you are "${role}"`, 'insufficient_role');
    }
  }
}
