import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { IdentityRow } from './sso.repository.ts';
import type { SsoRepos } from './sso.service.ts';
import type { identityOut } from './sso.responses.ts';

/** The API's answer about a linked identity: its response schema's type, so that the two cannot drift. */
export type IdentityView = z.output<typeof identityOut>;

export function identityView(r: IdentityRow): IdentityView {
  return { id: r.id, connection_id: r.connection_id, issuer: r.issuer, subject: r.subject, tenant_id: r.tenant_id, object_id: r.object_id, created_at: r.created_at, last_login_at: r.last_login_at };
}

/**
 * The IdP identities linked to a person's account, and the explicit,
 * audited way to unlink one: an account is never moved to another identity
 * by email, so moving a person to a new IdP (or undoing a wrong link) is an
 * admin's deliberate act.
 */
export class IdentitiesService {
  constructor(
    private readonly store: Store<SsoRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
    /** Ends the person's browser sessions: one made through the unlinked identity must not outlive it. */
    private readonly endSessionsOf: (userId: string) => Promise<void>,
  ) {}

  async list(actor: Actor, slug: string, username: string): Promise<IdentityView[]> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const user = await this.store.repos.users.findByUsername(org.id, username);
    if (!user) throw errors.notFound(`user "${username}"`);
    return (await this.store.repos.sso.identitiesOfUser(org.id, user.id)).map(identityView);
  }

  /** Every linked identity of an organization, by user id (the admin page). */
  async byUser(actor: Actor, slug: string): Promise<Map<string, IdentityView[]>> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const map = new Map<string, IdentityView[]>();
    for (const r of await this.store.repos.sso.identitiesOfOrg(org.id)) {
      const list = map.get(r.user_id) ?? [];
      list.push(identityView(r));
      map.set(r.user_id, list);
    }
    return map;
  }

  async unlink(actor: Actor, slug: string, username: string, identityId: string): Promise<IdentityView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const removed = await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      const user = await repos.users.findByUsername(org.id, username);
      if (!user) throw errors.notFound(`user "${username}"`);
      // The operator's account reaches every organization: an organization admin who could unlink it
      // could then link it by email to an IdP of their own. Only the operator unlinks it.
      if (user.instance_admin === 1) {
        const me = actor.principal.type === 'user' ? await repos.users.findById(actor.principal.orgId, actor.principal.id) : undefined;
        if (me?.instance_admin !== 1) throw errors.forbidden("only the instance operator can unlink the operator's sign-in identity", 'operator_identity');
      }
      const row = await repos.sso.deleteIdentity(org.id, user.id, identityId);
      if (!row) throw errors.notFound(`identity "${identityId}" of user "${username}"`);
      await this.audit.record(repos, actor, {
        orgId: org.id,
        action: 'sso.identity.unlink',
        targetType: 'user',
        targetId: user.id,
        targetName: user.username,
        details: { identity_id: row.id, connection_id: row.connection_id, issuer: row.issuer, subject: row.subject, ...(row.tenant_id ? { tenant_id: row.tenant_id } : {}) },
      });
      invalidate.all();
      return { row, userId: user.id };
    });
    await this.endSessionsOf(removed.userId);
    return identityView(removed.row);
  }
}
