import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { OrgRole, Principal, TeamRole } from '../auth/principal.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { ApiKeyRow } from '../keys/keys.repository.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { OrgRow, OrgsRepository } from '../orgs/orgs.repository.ts';
import { emailDomainClaimedElsewhere } from './email-domain-claims.ts';
import type { DomainClaims } from './email-domain-claims.ts';
import type { EntityNamesRepository } from './entity-names.repository.ts';
import { requireClaimableName } from './entity-names.ts';
import type { UserRow, UsersRepository } from './users.repository.ts';
import type { meOut, userOut } from './users.responses.ts';

/**
 * What the user rules touch, in one transaction with their audit events. Of teams and SSO only what
 * they read, declared by shape: those features build on this one (src/storage.ts passes their repositories).
 */
export interface UsersRepos extends InvalidationRepos {
  users: UsersRepository;
  entities: EntityNamesRepository;
  orgs: OrgsRepository;
  audit: AuditRepository;
  sso: DomainClaims;
  teams: { teamsOfUser(orgId: string, userId: string): Promise<Array<{ name: string; role: TeamRole }>> };
}

/** The API's answers about users: their response schemas' types, so that views and schemas cannot drift. */
export type UserView = z.output<typeof userOut>;
export type MeView = z.output<typeof meOut>;

export function userView(u: UserRow): UserView {
  return { id: u.id, username: u.username, email: u.email, display_name: u.display_name, role: u.role, status: u.status, created_at: u.created_at };
}

export interface NewUser {
  email: string;
  username: string;
  role: OrgRole;
  display_name?: string | undefined;
  instance_admin?: boolean;
}

/**
 * Ends a person's browser sessions once their deactivation (or removal) committed. Best effort, on purpose:
 * while the account is inactive a session is refused anyway (every request reads the user), and every way
 * back to active (a reactivation, a SCIM revival) ends the sessions BEFORE it commits. So a deactivation is
 * never answered 503 for a session store it does not need (Redis down), and no session survives it.
 */
export async function endSessionsAfterDeactivation(endSessionsOf: (userId: string) => Promise<void>, userId: string): Promise<void> {
  try {
    await endSessionsOf(userId);
  } catch {
    // See above: a reactivation ends them first, or they expire.
  }
}

export class UsersService {
  constructor(
    private readonly store: Store<UsersRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  /** Ends every browser session of a person (SSO's session store, wired by createWiredSso); null without one (the CLI). */
  private endSessionsOf: ((userId: string) => Promise<void>) | null = null;

  useSessionEnder(endSessionsOf: (userId: string) => Promise<void>): void {
    this.endSessionsOf = endSessionsOf;
  }

  /**
   * Inserts a user inside the caller's transaction. Shared by every way a user is created (the API, the
   * admin page, the CLI, bootstrap, SSO JIT). The username is judged first, so that a clash there says
   * nothing about the email. An email is refused alike, 409 `email_unavailable` "cannot be used", when
   * another organization's SSO connection claims its domain or when an account of another organization
   * has it: the answer does not tell an account elsewhere from a claimed domain (no email oracle, no
   * squatting another tenant's addresses). Only a clash within the caller's own organization says so.
   */
  async insertUser(repos: UsersRepos, org: OrgRow, input: NewUser): Promise<UserRow> {
    await requireClaimableName(repos, input.username, org.id, 'username_taken');
    const unusable = () => errors.conflict(`the email ${input.email} cannot be used for an account in ${org.slug}`, 'email_unavailable');
    if (await emailDomainClaimedElsewhere(repos, input.email, org.id)) throw unusable();
    if (await repos.users.emailTaken(input.email)) {
      if (await repos.users.findByEmail(org.id, input.email)) throw errors.conflict(`a user with email "${input.email}" already exists in ${org.slug}`, 'email_taken');
      throw unusable();
    }
    const now = new Date().toISOString();
    const row: UserRow = {
      id: randomUUID(),
      org_id: org.id,
      email: input.email,
      username: input.username,
      display_name: input.display_name ?? input.username,
      role: input.role,
      status: 'active',
      instance_admin: input.instance_admin ? 1 : 0,
      theme: 'system',
      created_at: now,
      updated_at: now,
    };
    try {
      await repos.entities.claim(row.username, 'user', org.id);
      await repos.users.insert(row);
    } catch (err) {
      // A concurrent creation won the race: which of the two it took is not said (see above).
      if (isUniqueViolation(err)) throw errors.conflict(`the username "${input.username}" is taken or the email ${input.email} cannot be used`, 'user_taken');
      throw err;
    }
    return row;
  }

  async provision(actor: Actor, slug: string, input: NewUser): Promise<UserView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.store.transaction(async (repos) => {
      const u = await this.insertUser(repos, org, { ...input, instance_admin: false });
      await this.audit.record(repos, actor, { orgId: org.id, action: 'user.create', targetType: 'user', targetId: u.id, targetName: u.username, details: { role: u.role, email: u.email } });
      return u;
    });
    return userView(row);
  }

  async list(actor: Actor, slug: string, page: PageRequest): Promise<Page<UserView>> {
    const { org } = await this.access.require(actor, slug, 'viewer');
    const rows = await this.store.repos.users.list(org.id, page);
    return { items: rows.items.map(userView), next: rows.next };
  }

  async get(actor: Actor, slug: string, username: string): Promise<UserView> {
    const { org } = await this.access.require(actor, slug, 'viewer');
    const u = await this.store.repos.users.findByUsername(org.id, username);
    if (!u) throw errors.notFound(`user "${username}"`);
    return userView(u);
  }

  async update(actor: Actor, slug: string, username: string, patch: { role?: OrgRole | undefined; status?: 'active' | 'deactivated' | undefined; display_name?: string | undefined }): Promise<UserView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    if (patch.status === 'active') {
      // A reactivation ends the person's sessions BEFORE it commits: no session can be made for a deactivated
      // account meanwhile, and when the session store fails (503) nothing changed, so the retry ends them.
      // Ended only after the commit, a failure left the account active with its old sessions, and the retry
      // (already active) did not end them: a session from before the deactivation came back with it.
      const before = await this.store.repos.users.findByUsername(org.id, username);
      if (before && before.status !== 'active') await this.endSessionsOf?.(before.id);
    }
    const updated = await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      const u = await repos.users.findByUsername(org.id, username);
      if (!u) throw errors.notFound(`user "${username}"`);
      const losesAdmin = u.role === 'admin' && u.status === 'active' && ((patch.role !== undefined && patch.role !== 'admin') || patch.status === 'deactivated');
      if (losesAdmin && (await repos.users.countAdmins(org.id)) <= 1) {
        throw errors.conflict('an organization must keep at least one active admin', 'last_admin');
      }
      const set: Partial<UserRow> = { updated_at: new Date().toISOString() };
      if (patch.role !== undefined) set.role = patch.role;
      if (patch.status !== undefined) set.status = patch.status;
      if (patch.display_name !== undefined) set.display_name = patch.display_name;
      await repos.users.update(org.id, u.id, set);
      const action = patch.status === 'deactivated' ? 'user.deactivate' : patch.status === 'active' && u.status !== 'active' ? 'user.reactivate' : 'user.update';
      await this.audit.record(repos, actor, { orgId: org.id, action, targetType: 'user', targetId: u.id, targetName: u.username, details: { ...patch } });
      invalidate.all();
      return { ...u, ...set };
    });
    if (patch.status === 'deactivated' && this.endSessionsOf) await endSessionsAfterDeactivation(this.endSessionsOf, updated.id);
    return userView(updated);
  }

  async deactivate(actor: Actor, slug: string, username: string): Promise<void> {
    await this.update(actor, slug, username, { status: 'deactivated' });
  }

  async me(principal: Principal): Promise<MeView> {
    if (principal.type !== 'user') {
      return {
        username: principal.username,
        email: principal.email,
        display_name: principal.displayName,
        principal_type: principal.type,
        orgs: [{ slug: principal.orgSlug, role: null }],
        teams: principal.teams.map((t) => ({ name: t.name, org: principal.orgSlug, role: t.role })),
      };
    }
    const u = await this.store.repos.users.findById(principal.orgId, principal.id);
    if (!u) throw errors.unauthenticated();
    const teams = await this.store.repos.teams.teamsOfUser(principal.orgId, u.id);
    return {
      username: u.username,
      email: u.email,
      display_name: u.display_name,
      principal_type: 'user' as const,
      instance_admin: u.instance_admin === 1,
      theme: u.theme,
      orgs: [{ slug: principal.orgSlug, role: u.role }],
      teams: teams.map((t) => ({ name: t.name, org: principal.orgSlug, role: t.role })),
    };
  }

  async setTheme(actor: Actor, theme: 'light' | 'dark' | 'system'): Promise<void> {
    const principal = actor.principal;
    if (principal.type !== 'user') throw errors.forbidden('service accounts have no preferences');
    // A preference, not a change of access: no audit event (issue 18). Picking light or dark is not
    // something an auditor looks for, and it would bury the events that are.
    await this.store.repos.users.update(principal.orgId, principal.id, { theme, updated_at: new Date().toISOString() });
  }

  /** The identity of a person, for a credential that belongs to them; null when they may not act. */
  async principalForUser(orgId: string, userId: string, via: Principal['via'], key: ApiKeyRow | null): Promise<Principal | null> {
    const repos = this.store.repos;
    const [u, org] = await Promise.all([repos.users.findById(orgId, userId), repos.orgs.findById(orgId)]);
    if (!u || !org || u.status !== 'active') return null;
    const teams = await repos.teams.teamsOfUser(orgId, u.id);
    return {
      type: 'user',
      via,
      orgId,
      orgSlug: org.slug,
      id: u.id,
      username: u.username,
      email: u.email,
      displayName: u.display_name,
      orgRole: u.role,
      instanceAdmin: u.instance_admin === 1,
      orgRequireSso: org.require_sso === 1,
      teams,
      keyId: key?.id ?? null,
    };
  }

  /** Owner loader for personal keys: 'inactive' for a deactivated person (whose key says so, rather than "no such key"). */
  readonly keyOwnerLoader = async (row: ApiKeyRow): Promise<Principal | 'inactive' | null> => {
    if (!row.user_id) return null;
    const principal = await this.principalForUser(row.org_id, row.user_id, 'api_key', row);
    if (principal) return principal;
    // Only on the way to a refusal (then cached as one): was it the person's status?
    return (await this.store.repos.users.findById(row.org_id, row.user_id))?.status === 'deactivated' ? 'inactive' : null;
  };
}
