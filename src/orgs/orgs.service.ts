import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { OrgAccess, OrgAccessRepos } from './org-access.ts';
import type { OrgRow, OrgsRepository } from './orgs.repository.ts';
import type { orgOut } from './orgs.responses.ts';

/** What the organization rules touch, in one transaction with their audit events (users: as OrgAccess reads them). */
export interface OrgsRepos extends InvalidationRepos {
  orgs: OrgsRepository;
  users: OrgAccessRepos['users'];
  audit: AuditRepository;
}

export interface OrgPolicies {
  require_sso: boolean;
  disable_personal_keys: boolean;
  max_key_lifetime_days: number | null;
}

/** The API's answer about an organization: its response schema's type, so that the two cannot drift. */
export type OrgView = z.output<typeof orgOut>;

export function orgView(row: OrgRow): OrgView {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    plan: row.plan,
    policies: {
      require_sso: row.require_sso === 1,
      disable_personal_keys: row.disable_personal_keys === 1,
      max_key_lifetime_days: row.max_key_lifetime_days,
    },
    created_at: row.created_at,
  };
}

/** A new organization with no policies set. */
export function newOrgRow(input: { slug: string; name: string; plan: 'standard' | 'enterprise' }): OrgRow {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    slug: input.slug,
    name: input.name,
    plan: input.plan,
    require_sso: 0,
    disable_personal_keys: 0,
    max_key_lifetime_days: null,
    created_at: now,
    updated_at: now,
  };
}

/**
 * Whether an organization has an SSO connection its people can sign in with.
 * Injected (app.ts) so that organizations need not know how SSO stores connections.
 */
export type SsoAvailability = (orgId: string) => Promise<boolean>;

export class OrgsService {
  private ssoAvailable: SsoAvailability | null = null;

  constructor(
    private readonly store: Store<OrgsRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  /** Lockout guard: require_sso cannot be switched on while nobody could sign in through SSO. */
  useSsoAvailability(check: SsoAvailability): void {
    this.ssoAvailable = check;
  }

  /** Creates an organization. `actor` null means the operator's CLI. */
  async create(actor: Actor | null, input: { slug: string; name: string; plan: 'standard' | 'enterprise' }): Promise<OrgView> {
    if (actor) await this.requireInstanceAdmin(actor);
    const row = newOrgRow(input);
    try {
      await this.store.transaction(async (repos) => {
        await repos.orgs.insert(row);
        await this.audit.record(repos, actor ?? 'cli', { orgId: row.id, action: 'org.create', targetType: 'org', targetId: row.id, targetName: row.slug, details: { plan: row.plan } });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw errors.conflict(`an organization with slug "${input.slug}" already exists`, 'slug_taken');
      throw err;
    }
    return orgView(row);
  }

  async get(actor: Actor, slug: string): Promise<OrgView> {
    const { org } = await this.access.require(actor, slug, 'viewer');
    return orgView(org);
  }

  async update(actor: Actor, slug: string, patch: { name?: string | undefined; plan?: 'standard' | 'enterprise' | undefined; policies?: Partial<OrgPolicies> | undefined }): Promise<OrgView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    if (patch.plan !== undefined && patch.plan !== org.plan) await this.requireInstanceAdmin(actor, 'only the instance operator can change an organization\'s plan');
    // Requiring SSO with no enabled connection would lock every person out (only the instance operator's login link would still work).
    if (patch.policies?.require_sso === true && this.ssoAvailable && !(await this.ssoAvailable(org.id))) {
      throw errors.conflict(`organization "${org.slug}" has no enabled SSO connection: add and enable one before requiring SSO, or nobody could sign in`, 'sso_not_configured');
    }
    const set: Partial<OrgRow> = { updated_at: new Date().toISOString() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.plan !== undefined) set.plan = patch.plan;
    if (patch.policies?.require_sso !== undefined) set.require_sso = patch.policies.require_sso ? 1 : 0;
    if (patch.policies?.disable_personal_keys !== undefined) set.disable_personal_keys = patch.policies.disable_personal_keys ? 1 : 0;
    if (patch.policies?.max_key_lifetime_days !== undefined) set.max_key_lifetime_days = patch.policies.max_key_lifetime_days;
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      await repos.orgs.update(org.id, set);
      await this.audit.record(repos, actor, { orgId: org.id, action: 'org.update', targetType: 'org', targetId: org.id, targetName: org.slug, details: { ...patch } });
      invalidate.all();
    });
    return orgView({ ...org, ...set });
  }

  private async requireInstanceAdmin(actor: Actor, message = 'only the instance operator can create organizations'): Promise<void> {
    const p = actor.principal;
    const me = p.type === 'user' ? await this.store.repos.users.findById(p.orgId, p.id) : undefined;
    if (!me || me.instance_admin !== 1 || me.status !== 'active') throw errors.forbidden(message, 'instance_admin_required');
  }
}
