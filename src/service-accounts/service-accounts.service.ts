import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { Principal } from '../auth/principal.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { AttributedUser } from '../assertions/assertion-issuer.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { AttributionClaim } from '../gateway/identity.ts';
import type { ApiKeyRow, KeysRepository } from '../keys/keys.repository.ts';
import type { KeysService, KeyView, NewKeyView } from '../keys/keys.service.ts';
import { keyView } from '../keys/keys.service.ts';
import type { OrgAccess, OrgContext } from '../orgs/org-access.ts';
import type { OrgRow, OrgsRepository } from '../orgs/orgs.repository.ts';
import type { TeamRow, TeamsRepository } from '../teams/teams.repository.ts';
import type { TeamsService } from '../teams/teams.service.ts';
import type { AccessTokensRepository } from '../federation/access-tokens.repository.ts';
import type { FederatedCredentialsRepository } from '../federation/federated-credentials.repository.ts';
import type { EntityNamesRepository } from '../users/entity-names.repository.ts';
import { requireClaimableName } from '../users/entity-names.ts';
import { deriveUsername } from '../users/provisioning.ts';
import type { UsersRepository } from '../users/users.repository.ts';
import type { ServiceAccountRow, ServiceAccountsRepository, ServiceAccountWithTeam } from './service-accounts.repository.ts';
import type { serviceAccountOut } from './service-accounts.responses.ts';

/** What the service-account rules touch, in one transaction with their audit events. */
export interface ServiceAccountsRepos extends InvalidationRepos {
  serviceAccounts: ServiceAccountsRepository;
  teams: TeamsRepository;
  users: UsersRepository;
  orgs: OrgsRepository;
  entities: EntityNamesRepository;
  keys: KeysRepository;
  audit: AuditRepository;
  federatedCredentials: FederatedCredentialsRepository;
  accessTokens: AccessTokensRepository;
}

/** The API's answer about a service account: its response schema's type, so that the two cannot drift. */
export type ServiceAccountView = z.output<typeof serviceAccountOut>;

export interface NewServiceAccountInput {
  name: string;
  username?: string | undefined;
  key_name?: string | undefined;
  expires_in_days?: number | undefined;
  /** Federation only: created without a key, and no key may ever be made for it. */
  keyless?: boolean | undefined;
}

/** What a new account's response carries: its view and its first key (null for a keyless account). */
export type CreatedServiceAccountView = ServiceAccountView & { key: NewKeyView | null };

function view(sa: ServiceAccountWithTeam, orgSlug: string): ServiceAccountView {
  return { id: sa.id, username: sa.username, name: sa.name, team: sa.team_name, scope: sa.scope, keyless: sa.keyless === 1, org: orgSlug, created_at: sa.created_at, updated_at: sa.updated_at };
}

/**
 * Service accounts: API keys not tied to a person, with write access to one
 * team (an enterprise feature). Team admins manage their team's accounts;
 * org admins manage every account of the organization, and alone create
 * organization-scoped ones (which write to a default team). A service
 * account itself can manage nothing.
 */
export class ServiceAccountsService {
  constructor(
    private readonly store: Store<ServiceAccountsRepos>,
    private readonly access: OrgAccess,
    private readonly teams: TeamsService,
    private readonly keys: KeysService,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  private static requirePerson(actor: Actor): void {
    if (actor.principal.type !== 'user') throw errors.forbidden('service accounts cannot manage service accounts or keys', 'not_a_person');
  }

  private static requireEnterprise(org: OrgRow): void {
    if (org.plan !== 'enterprise') {
      throw errors.forbidden(`service accounts are an enterprise feature: organization "${org.slug}" is on the ${org.plan} plan`, 'enterprise_feature');
    }
  }

  /** The actor's role in a team of its organization (null when not a member). */
  private async teamRole(actor: Actor, orgId: string, teamId: string) {
    if (actor.principal.type !== 'user') return null;
    return (await this.store.repos.teams.getMember(orgId, teamId, actor.principal.id))?.role ?? null;
  }

  private async canManage(actor: Actor, ctx: OrgContext, sa: ServiceAccountRow): Promise<boolean> {
    if (actor.principal.type !== 'user') return false;
    if (ctx.role === 'admin') return true;
    return sa.scope === 'team' && (await this.teamRole(actor, ctx.org.id, sa.team_id)) === 'admin';
  }

  private async canSee(actor: Actor, ctx: OrgContext, sa: ServiceAccountRow): Promise<boolean> {
    if (actor.principal.type !== 'user') return false;
    if (ctx.role === 'admin') return true;
    return (await this.teamRole(actor, ctx.org.id, sa.team_id)) !== null;
  }

  /** A service account the actor may see (404 otherwise: what it may not see does not exist for it), and whether it may manage it. */
  private async load(actor: Actor, id: string, mode: 'see' | 'manage'): Promise<{ ctx: OrgContext; sa: ServiceAccountWithTeam }> {
    ServiceAccountsService.requirePerson(actor);
    const ctx = await this.access.own(actor);
    const sa = await this.store.repos.serviceAccounts.findById(ctx.org.id, id);
    if (!sa || !(await this.canSee(actor, ctx, sa))) throw errors.notFound(`service account "${id}"`);
    if (mode === 'manage' && !(await this.canManage(actor, ctx, sa))) {
      throw errors.forbidden(
        sa.scope === 'org' ? 'only an organization admin can manage an organization-scoped service account' : 'only an organization admin or an admin of its team can manage this service account',
        'insufficient_role',
      );
    }
    return { ctx, sa };
  }

  /** `POST /teams/:team/service-accounts`: org admin or team admin; enterprise plan only. */
  async createForTeam(actor: Actor, teamName: string, input: NewServiceAccountInput): Promise<CreatedServiceAccountView> {
    ServiceAccountsService.requirePerson(actor);
    const ctx = await this.teams.resolveTeam(actor, teamName);
    ServiceAccountsService.requireEnterprise(ctx.org);
    if (ctx.role !== 'admin' && ctx.teamRole !== 'admin') {
      throw errors.forbidden('only an organization admin or an admin of this team can create its service accounts', 'insufficient_role');
    }
    return this.create(actor, ctx.org, ctx.team, 'team', input);
  }

  /** `POST /orgs/:org/service-accounts`: an organization-scoped account with a default team; org admins only. */
  async createForOrg(actor: Actor, slug: string, input: NewServiceAccountInput & { default_team: string }): Promise<CreatedServiceAccountView> {
    ServiceAccountsService.requirePerson(actor);
    const ctx = await this.access.resolve(actor, slug);
    ServiceAccountsService.requireEnterprise(ctx.org);
    if (ctx.role !== 'admin') throw errors.forbidden('only an organization admin can create organization-scoped service accounts', 'insufficient_role');
    const team = await this.store.repos.teams.findByName(ctx.org.id, input.default_team);
    if (!team) throw errors.validation(`default_team: no team "${input.default_team}" in organization "${slug}"`);
    return this.create(actor, ctx.org, team, 'org', input);
  }

  private async create(actor: Actor, org: OrgRow, team: TeamRow, scope: 'team' | 'org', input: NewServiceAccountInput): Promise<CreatedServiceAccountView> {
    const now = new Date().toISOString();
    try {
      const result = await this.store.transaction(async (repos) => {
        const username = await this.pickUsername(repos, input, org.id);
        const keyless = input.keyless === true;
        const row: ServiceAccountRow = { id: randomUUID(), org_id: org.id, team_id: team.id, scope, keyless: keyless ? 1 : 0, username, name: input.name, created_by: actor.principal.id, created_at: now, updated_at: now };
        await repos.entities.claim(username, 'service_account', org.id);
        await repos.serviceAccounts.insert(row);
        await this.audit.record(repos, actor, { orgId: org.id, action: 'service_account.create', targetType: 'service_account', targetId: row.id, targetName: username, details: { team: team.name, scope, name: input.name, keyless } });
        if (keyless) return { row, issued: null };
        const issued = await this.keys.issue(repos, { org, ownerType: 'service_account', ownerId: row.id, name: input.key_name ?? 'default', expiresInDays: input.expires_in_days, createdBy: actor.principal.id });
        await this.audit.record(repos, actor, { orgId: org.id, action: 'key.create', targetType: 'api_key', targetId: issued.row.id, targetName: issued.row.key_id, details: { owner_type: 'service_account', owner: username, name: issued.row.name, expires_at: issued.row.expires_at } });
        return { row, issued };
      });
      const key = result.issued && { ...keyView(result.issued.row), key: result.issued.key };
      return { ...view({ ...result.row, team_name: team.name }, org.slug), key };
    } catch (err) {
      if (isUniqueViolation(err)) throw errors.conflict(`the name "${input.username ?? input.name}" is already taken by a user, team or service account`, 'username_taken');
      throw err;
    }
  }

  private async pickUsername(repos: ServiceAccountsRepos, input: NewServiceAccountInput, orgId: string): Promise<string> {
    if (input.username !== undefined) {
      await requireClaimableName(repos, input.username, orgId, 'username_taken');
      return input.username;
    }
    return deriveUsername(repos, input.name, orgId);
  }

  async listForTeam(actor: Actor, teamName: string, page: PageRequest): Promise<Page<ServiceAccountView>> {
    ServiceAccountsService.requirePerson(actor);
    const ctx = await this.teams.resolveTeam(actor, teamName);
    if (ctx.role !== 'admin' && ctx.teamRole === null) throw errors.forbidden('only members of this team and organization admins can see its service accounts', 'insufficient_role');
    const rows = await this.store.repos.serviceAccounts.list(ctx.org.id, { teamId: ctx.team.id }, page);
    return { items: rows.items.map((sa) => view(sa, ctx.org.slug)), next: rows.next };
  }

  async listForOrg(actor: Actor, slug: string, page: PageRequest): Promise<Page<ServiceAccountView>> {
    ServiceAccountsService.requirePerson(actor);
    const ctx = await this.access.require(actor, slug, 'admin');
    const rows = await this.store.repos.serviceAccounts.list(ctx.org.id, {}, page);
    return { items: rows.items.map((sa) => view(sa, ctx.org.slug)), next: rows.next };
  }

  async get(actor: Actor, id: string): Promise<ServiceAccountView> {
    const { ctx, sa } = await this.load(actor, id, 'see');
    return view(sa, ctx.org.slug);
  }

  async rename(actor: Actor, id: string, name: string): Promise<ServiceAccountView> {
    const { ctx, sa } = await this.load(actor, id, 'manage');
    const updated_at = new Date().toISOString();
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      await repos.serviceAccounts.update(ctx.org.id, sa.id, { name, updated_at });
      await this.audit.record(repos, actor, { orgId: ctx.org.id, action: 'service_account.rename', targetType: 'service_account', targetId: sa.id, targetName: sa.username, details: { from: sa.name, to: name } });
      invalidate.all();
    });
    return view({ ...sa, name, updated_at }, ctx.org.slug);
  }

  /**
   * A service account the actor may manage (404 when it may not see it, 403 when it may only see it), for
   * what hangs off an account elsewhere (its federation rules, src/federation): one set of rules of who may.
   * `enterprise`: the change also needs the enterprise plan (creating; reading and deleting do not, so that
   * an organization that left the plan can still clean up).
   */
  async manageable(actor: Actor, id: string, options: { enterprise: boolean }): Promise<{ org: OrgRow; sa: ServiceAccountWithTeam }> {
    const { ctx, sa } = await this.load(actor, id, 'manage');
    if (options.enterprise) ServiceAccountsService.requireEnterprise(ctx.org);
    return { org: ctx.org, sa };
  }

  /** Deletes the account, its federation rules, and revokes every key and access token it has, at once. */
  async delete(actor: Actor, id: string): Promise<void> {
    const { ctx, sa } = await this.load(actor, id, 'manage');
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      // The account's row lock first: an exchange issuing one of its access tokens holds it until it commits
      // (then the token is revoked below), or waits for this deletion (then finds no rule: refused).
      await repos.keys.lockOwner({ ownerType: 'service_account', ownerId: sa.id });
      const now = new Date().toISOString();
      const revoked = await repos.keys.revokeAllForOwner(ctx.org.id, { ownerType: 'service_account', ownerId: sa.id }, now);
      const revokedTokens = await repos.accessTokens.revokeWhere(ctx.org.id, { serviceAccountId: sa.id }, now);
      const rules = await repos.federatedCredentials.deleteForServiceAccount(ctx.org.id, sa.id);
      await repos.serviceAccounts.delete(ctx.org.id, sa.id);
      await repos.entities.release(ctx.org.id, sa.username);
      await this.audit.record(repos, actor, {
        orgId: ctx.org.id,
        action: 'service_account.delete',
        targetType: 'service_account',
        targetId: sa.id,
        targetName: sa.username,
        details: { team: sa.team_name, revoked_keys: revoked.length, revoked_access_tokens: revokedTokens.length, federated_credentials_deleted: rules },
      });
      for (const h of [...revoked, ...revokedTokens]) invalidate.key(h);
    });
  }

  async listKeys(actor: Actor, id: string, page: PageRequest): Promise<Page<KeyView>> {
    const { ctx, sa } = await this.load(actor, id, 'manage');
    const rows = await this.store.repos.keys.listForOwner(ctx.org.id, { ownerType: 'service_account', ownerId: sa.id }, page);
    return { items: rows.items.map(keyView), next: rows.next };
  }

  async createKey(actor: Actor, id: string, input: { name: string; expires_in_days?: number | undefined }): Promise<NewKeyView> {
    const { ctx, sa } = await this.load(actor, id, 'manage');
    ServiceAccountsService.requireEnterprise(ctx.org);
    if (sa.keyless === 1) throw errors.conflict(`service account "${sa.username}" is keyless: it authenticates by workload federation only, and holds no API keys`, 'service_account_keyless');
    const issued = await this.store.transaction(async (repos) => {
      const k = await this.keys.issue(repos, { org: ctx.org, ownerType: 'service_account', ownerId: sa.id, name: input.name, expiresInDays: input.expires_in_days, createdBy: actor.principal.id });
      await this.audit.record(repos, actor, { orgId: ctx.org.id, action: 'key.create', targetType: 'api_key', targetId: k.row.id, targetName: k.row.key_id, details: { owner_type: 'service_account', owner: sa.username, name: input.name, expires_at: k.row.expires_at } });
      return k;
    });
    return { ...keyView(issued.row), key: issued.key };
  }

  /** For KeysService: a team admin manages the keys of their team's (team-scoped) service accounts. */
  readonly keyManagePolicy = async (actor: Actor, ctx: OrgContext, row: ApiKeyRow): Promise<boolean> => {
    if (row.owner_type !== 'service_account' || !row.service_account_id) return false;
    const sa = await this.store.repos.serviceAccounts.findById(ctx.org.id, row.service_account_id);
    return sa !== undefined && (await this.canManage(actor, ctx, sa));
  };

  /**
   * A service account's identity as its credentials carry it: its API keys (keyOwnerLoader) and its
   * federation access tokens (src/federation/access-token-source.ts, wired in src/core.ts). Null when the
   * account is gone or the organization's plan no longer allows service accounts.
   */
  readonly principalFor = async (orgId: string, serviceAccountId: string, credential: { via: 'api_key' | 'access_token'; keyId: string | null }): Promise<Principal | null> => {
    const repos = this.store.repos;
    const [sa, org] = await Promise.all([repos.serviceAccounts.findById(orgId, serviceAccountId), repos.orgs.findById(orgId)]);
    if (!sa || !org || org.plan !== 'enterprise') return null;
    return {
      type: 'service_account',
      via: credential.via,
      orgId: org.id,
      orgSlug: org.slug,
      id: sa.id,
      username: sa.username,
      email: null,
      displayName: sa.name,
      orgRole: null,
      instanceAdmin: false,
      // Write access to its team, and to nothing else.
      teams: [{ name: sa.team_name, role: 'member' }],
      keyId: credential.keyId,
    };
  };

  /** Owner loader for service-account keys: the account's identity, or null when it is gone or the plan no longer allows it. */
  readonly keyOwnerLoader = async (row: ApiKeyRow): Promise<Principal | null> => {
    if (!row.service_account_id) return null;
    return this.principalFor(row.org_id, row.service_account_id, { via: 'api_key', keyId: row.id });
  };

  /**
   * Attribution of a service-account run (X-WANDB-USERNAME / X-WANDB-USER-EMAIL):
   * the named person must be an active member of the account's team.
   */
  readonly attribute = async (principal: Principal, claim: AttributionClaim): Promise<AttributedUser> => {
    const repos = this.store.repos;
    const sa = await repos.serviceAccounts.findById(principal.orgId, principal.id);
    const who = claim.username ?? claim.email ?? '';
    const teamName = sa?.team_name ?? principal.teams[0]?.name ?? '';
    const notMember = () => errors.forbidden(`user "${who}" is not a member of the team "${teamName}" of this service account, so the run cannot be attributed to them`, 'attribution_not_member');
    if (!sa) throw notMember();
    // Usernames are lower case (fields.entityName); the tracking service matches X-WANDB-USERNAME case-insensitively: `Alice` is alice.
    const user = claim.username !== null ? await repos.users.findByUsername(principal.orgId, claim.username.toLowerCase()) : claim.email !== null ? await repos.users.findByEmail(principal.orgId, claim.email.toLowerCase()) : undefined;
    if (!user || !(await repos.teams.getMember(principal.orgId, sa.team_id, user.id))) throw notMember();
    // A deactivated member is said to be one: whoever holds the team's key knows the team's members anyway.
    // Someone deactivated outside the team is "not a member" above, and learns nothing more.
    if (user.status !== 'active') throw errors.forbidden(`user "${who}" of the team "${teamName}" is deactivated, so the run cannot be attributed to them`, 'user_deactivated');
    if (claim.username !== null && claim.email !== null && claim.email.toLowerCase() !== user.email.toLowerCase()) {
      throw errors.forbidden(`X-WANDB-USER-EMAIL "${claim.email}" is not the email of user "${claim.username}"`, 'attribution_mismatch');
    }
    return { id: user.id, username: user.username, email: user.email };
  };
}
