import { randomUUID } from 'node:crypto';
import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { OrgRole } from '../auth/principal.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { KeysRepos, KeysService } from '../keys/keys.service.ts';
import { newOrgRow, orgView } from '../orgs/orgs.service.ts';
import type { EntityNamesRepository } from './entity-names.repository.ts';
import { isReservedEntityName } from './entity-names.ts';
import type { UsersRepos, UsersService } from './users.service.ts';

/** Provisioning makes organizations, users and keys in one transaction. */
export type ProvisioningRepos = UsersRepos & KeysRepos;
import { userView } from './users.service.ts';

/**
 * A username derived from an email's local part, made unique with a numeric suffix; never a reserved
 * name. `orgId`: the organization it is for, which may take back its own released names (without it,
 * every released name counts as taken).
 */
export async function deriveUsername(repos: { entities: EntityNamesRepository }, preferred: string, orgId?: string): Promise<string> {
  let base = preferred
    .toLowerCase()
    .replace(/@.*$/, '')
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 56);
  if (base === '') base = 'user';
  if (!isReservedEntityName(base) && !(await repos.entities.isTaken(base, orgId))) return base;
  for (let i = 2; i < 1000; i++) {
    const candidate = `${base}-${i}`;
    if (!(await repos.entities.isTaken(candidate, orgId))) return candidate;
  }
  return `${base}-${randomUUID().slice(0, 8)}`;
}

/** The operator's provisioning (CLI): no principal, audit actor "operator". */
export class ProvisioningService {
  constructor(
    private readonly store: Store<ProvisioningRepos>,
    private readonly users: UsersService,
    private readonly keys: KeysService,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  /** Creates the first organization and its admin (also instance operator) and a personal key, all or nothing. */
  async bootstrap(input: { email: string; org: string; plan: 'standard' | 'enterprise'; orgName?: string | undefined; username?: string | undefined }) {
    return this.store.transaction(async (repos) => {
      if (await repos.users.emailTaken(input.email)) throw errors.conflict(`a user with email "${input.email}" already exists; nothing was changed`, 'email_taken');
      if (await repos.orgs.findBySlug(input.org)) throw errors.conflict(`an organization with slug "${input.org}" already exists; nothing was changed`, 'slug_taken');
      const org = newOrgRow({ slug: input.org, name: input.orgName ?? input.org, plan: input.plan });
      try {
        await repos.orgs.insert(org);
      } catch (err) {
        if (isUniqueViolation(err)) throw errors.conflict(`an organization with slug "${input.org}" already exists; nothing was changed`, 'slug_taken');
        throw err;
      }
      const username = input.username ?? (await deriveUsername(repos, input.email, org.id));
      const user = await this.users.insertUser(repos, org, { email: input.email, username, role: 'admin', instance_admin: true });
      const { row, key } = await this.keys.issue(repos, { org, ownerType: 'user', ownerId: user.id, name: 'bootstrap', createdBy: null });
      await this.audit.record(repos, 'cli', { orgId: org.id, action: 'org.bootstrap', targetType: 'org', targetId: org.id, targetName: org.slug, details: { admin: username, plan: org.plan } });
      return { org: orgView(org), user: { ...userView(user), instance_admin: true }, api_key: key, key_id: row.key_id };
    });
  }

  async createUser(input: { org: string; email: string; username: string; role: OrgRole; withKey: boolean }) {
    return this.invalidator.transaction(this.store, async (repos, invalidate) => {
      const org = await repos.orgs.findBySlug(input.org);
      if (!org) throw errors.notFound(`organization "${input.org}"`);
      const user = await this.users.insertUser(repos, org, { email: input.email, username: input.username, role: input.role });
      const issued = input.withKey ? await this.keys.issue(repos, { org, ownerType: 'user', ownerId: user.id, name: 'provisioned', createdBy: null }) : null;
      await this.audit.record(repos, 'cli', { orgId: org.id, action: 'user.create', targetType: 'user', targetId: user.id, targetName: user.username, details: { role: user.role, with_key: input.withKey } });
      invalidate.all();
      return { user: userView(user), org: org.slug, ...(issued ? { api_key: issued.key, key_id: issued.row.key_id } : {}) };
    });
  }
}
