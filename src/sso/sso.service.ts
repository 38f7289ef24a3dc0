import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { TeamRole } from '../auth/principal.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Config } from '../config/config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import { discover } from './oidc/discovery.ts';
import type { IdpFetcher } from './oidc/idp-fetch.ts';
import type { DiscoveryResult, ProviderMetadata } from './oidc/discovery.ts';
import type { DiscoveryProblem } from './oidc/problems.ts';
import type { SsoRepository } from './sso.repository.ts';
import { groupWarnings } from './setup-advice.ts';
import { isPublicMailDomain } from './public-mail-domains.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { ConnectionRow } from './sso.repository.ts';
import type { TeamsRepository } from '../teams/teams.repository.ts';
import type { TeamOwnership } from '../teams/teams.service.ts';
import type { UsersRepos } from '../users/users.service.ts';
import type { connectionOut, connectionTestOut } from './sso.responses.ts';

/** What the SSO rules touch (a login provisions users and syncs team memberships), in one transaction with their audit events. */
/** scimGroups: which teams SCIM owns (a group rule does not manage those: see SsoLoginService.syncGroups). */
export type SsoRepos = UsersRepos & { sso: SsoRepository; teams: TeamsRepository; scimGroups: TeamOwnership };

export const CLIENT_SECRET_PURPOSE = 'sso-client-secret';
export const DEFAULT_SCOPES = ['openid', 'email', 'profile'];
export const DEFAULT_CLAIMS = { email: 'email', name: 'name', username: 'preferred_username', groups: 'groups' };

export interface GroupRule {
  group: string;
  team: string;
  role: TeamRole;
}
export interface ClaimMapping {
  email?: string | undefined;
  name?: string | undefined;
  username?: string | undefined;
  groups?: string | undefined;
}

export interface ConnectionInput {
  issuer: string;
  client_id: string;
  flow: 'implicit' | 'code';
  response_mode: 'form_post' | 'fragment';
  client_secret?: string | null | undefined;
  scopes?: string[] | undefined;
  claims?: ClaimMapping | undefined;
  domains: string[];
  group_roles: GroupRule[];
  jit: boolean;
  allowed_tenant_ids?: string[] | undefined;
  enabled: boolean;
}
export type ConnectionPatch = Partial<ConnectionInput>;

/** The API's answers about a connection: their response schemas' types, so that views and schemas cannot drift. */
export type ConnectionView = z.output<typeof connectionOut>;
export type ConnectionTestView = z.output<typeof connectionTestOut>;

/** Everything a login needs from a connection, decoded. */
export interface Connection {
  row: ConnectionRow;
  scopes: string[];
  claims: Required<{ [K in keyof ClaimMapping]: string }>;
  groupRules: GroupRule[];
  allowedTenantIds: string[];
  metadata: ProviderMetadata | null;
}

export type SaveOutcome = { ok: true; connection: ConnectionView } | { ok: false; problems: DiscoveryProblem[] };

export function decodeConnection(row: ConnectionRow): Connection {
  return {
    row,
    scopes: JSON.parse(row.scopes) as string[],
    claims: { ...DEFAULT_CLAIMS, ...(JSON.parse(row.claims) as ClaimMapping) },
    groupRules: JSON.parse(row.group_roles) as GroupRule[],
    allowedTenantIds: JSON.parse(row.allowed_tenant_ids) as string[],
    metadata: row.metadata ? (JSON.parse(row.metadata) as ProviderMetadata) : null,
  };
}

function normalizeScopes(scopes: string[] | undefined): string[] {
  const list = scopes && scopes.length ? scopes : DEFAULT_SCOPES;
  return ['openid', ...list.filter((s) => s !== 'openid')].filter((s, i, a) => a.indexOf(s) === i);
}

/** SSO connections of an organization (org admins): CRUD, each save checked by discovery. */
export class SsoService {
  constructor(
    private readonly store: Store<SsoRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly secretBox: SecretBox,
    private readonly config: Pick<Config, 'publicUrl' | 'allowHttpIssuers' | 'ssoHttpTimeoutMs'>,
    private readonly logger: Logger,
    /** Every fetch from an IdP (discovery, JWKS, token request) goes through it. */
    readonly idp: IdpFetcher,
  ) {}

  get callbackUri(): string {
    return `${this.config.publicUrl}/login/callback`;
  }

  private repo(repos?: SsoRepos): SsoRepository {
    return (repos ?? this.store.repos).sso;
  }

  async view(row: ConnectionRow, orgSlug: string, repos?: SsoRepos): Promise<ConnectionView> {
    const c = decodeConnection(row);
    return {
      id: row.id,
      org: orgSlug,
      issuer: row.issuer,
      client_id: row.client_id,
      flow: row.flow,
      response_mode: row.response_mode,
      has_client_secret: row.client_secret_sealed !== null,
      scopes: c.scopes,
      claims: c.claims,
      domains: await this.repo(repos).domainsOf(row.org_id, row.id),
      group_roles: c.groupRules,
      jit: row.jit === 1,
      allowed_tenant_ids: c.allowedTenantIds,
      enabled: row.enabled === 1,
      callback_uri: this.callbackUri,
      discovered_issuer: c.metadata?.issuer ?? null,
      discovered_at: row.discovered_at,
      created_at: row.created_at,
      updated_at: row.updated_at,
      warnings: groupWarnings({ issuer: row.issuer, scopes: c.scopes, groupRules: c.groupRules, groupsClaim: c.claims.groups }),
    };
  }

  runDiscovery(input: Pick<ConnectionInput, 'issuer' | 'client_id' | 'flow' | 'response_mode' | 'allowed_tenant_ids'> & { client_secret?: string | null | undefined }): Promise<DiscoveryResult> {
    return discover(
      { issuer: input.issuer, clientId: input.client_id, flow: input.flow, responseMode: input.response_mode, clientSecret: input.client_secret ?? null, allowedTenantIds: input.allowed_tenant_ids ?? [] },
      { allowHttpIssuers: this.config.allowHttpIssuers, timeoutMs: this.config.ssoHttpTimeoutMs, fetcher: this.idp },
    );
  }

  /** Problems that need the database: domains served elsewhere, teams that do not exist. */
  private async checkReferences(repos: SsoRepos, orgId: string, connectionId: string | null, input: Pick<ConnectionInput, 'domains' | 'group_roles'>): Promise<DiscoveryProblem[]> {
    const problems: DiscoveryProblem[] = [];
    const repo = this.repo(repos);
    for (const d of input.domains) {
      if (isPublicMailDomain(d)) {
        problems.push({ field: 'domains', code: 'domain_public', message: `"${d}" is a public mail provider's domain: its addresses belong to many people, not to one organization, so it cannot be used` });
        continue;
      }
      // A domain is one organization's. Whether another organization holds it is not said: "cannot be used" is all.
      const owner = await repo.connectionForDomain(d);
      if (owner && owner.connection_id !== connectionId) {
        problems.push(
          owner.org_id === orgId
            ? { field: 'domains', code: 'domain_taken', message: `the email domain "${d}" is already served by another SSO connection of this organization (${owner.connection_id}); remove it there first` }
            : { field: 'domains', code: 'domain_unavailable', message: `the email domain "${d}" cannot be used` },
        );
      }
    }
    const teams = [...new Set(input.group_roles.map((r) => r.team))];
    for (const t of teams) {
      if (!(await repos.teams.findByName(orgId, t))) problems.push({ field: 'group_roles', code: 'team_not_found', message: `group_roles names the team "${t}", which does not exist in this organization` });
    }
    return problems;
  }

  async list(actor: Actor, slug: string): Promise<ConnectionView[]> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const rows = await this.repo().listConnections(org.id);
    return Promise.all(rows.map((r) => this.view(r, org.slug)));
  }

  /** Whether people of an organization can sign in through SSO at all (the require_sso lockout guard asks). */
  async hasEnabledConnection(orgId: string): Promise<boolean> {
    return (await this.repo().listConnections(orgId)).some((r) => r.enabled === 1);
  }

  async get(actor: Actor, slug: string, id: string): Promise<ConnectionView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.repo().findConnection(org.id, id);
    if (!row) throw errors.notFound(`SSO connection "${id}"`);
    return this.view(row, org.slug);
  }

  /** A connection, decoded, for an admin of its organization (the test login starts from it). */
  async connectionForAdmin(actor: Actor, slug: string, id: string): Promise<Connection> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.repo().findConnection(org.id, id);
    if (!row) throw errors.notFound(`SSO connection "${id}"`);
    return decodeConnection(row);
  }

  async create(actor: Actor, slug: string, input: ConnectionInput): Promise<SaveOutcome> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const d = await this.runDiscovery(input);
    const refs = await this.checkReferences(this.store.repos, org.id, null, input);
    const problems = [...d.problems, ...refs];
    if (problems.length) return { ok: false, problems };
    const now = new Date().toISOString();
    const row: ConnectionRow = {
      id: randomUUID(),
      org_id: org.id,
      issuer: input.issuer.trim(),
      client_id: input.client_id.trim(),
      flow: input.flow,
      response_mode: input.response_mode,
      client_secret_sealed: input.client_secret ? this.secretBox.encrypt(CLIENT_SECRET_PURPOSE, input.client_secret) : null,
      scopes: JSON.stringify(normalizeScopes(input.scopes)),
      claims: JSON.stringify(input.claims ?? {}),
      group_roles: JSON.stringify(input.group_roles),
      jit: input.jit ? 1 : 0,
      allowed_tenant_ids: JSON.stringify((input.allowed_tenant_ids ?? []).map((t) => t.toLowerCase())),
      enabled: input.enabled ? 1 : 0,
      metadata: JSON.stringify(d.metadata),
      discovered_at: now,
      created_at: now,
      updated_at: now,
    };
    const view = await this.claimingDomains(() => this.store.transaction(async (repos) => {
      const repo = this.repo(repos);
      await repo.insertConnection(row);
      await repo.setDomains(org.id, row.id, input.domains);
      await this.audit.record(repos, actor, {
        orgId: org.id,
        action: 'sso.connection.create',
        targetType: 'sso_connection',
        targetId: row.id,
        targetName: row.issuer,
        details: { client_id: row.client_id, flow: row.flow, response_mode: row.response_mode, domains: input.domains, jit: input.jit, has_client_secret: row.client_secret_sealed !== null },
      });
      return this.view(row, org.slug, repos);
    }));
    if ('problems' in view) return view;
    return { ok: true, connection: view };
  }

  /**
   * Runs a save that writes domains; a domain claimed by someone else between
   * the check and the write is a unique violation, answered like the check would.
   */
  private async claimingDomains<T>(save: () => Promise<T>): Promise<T | { ok: false; problems: DiscoveryProblem[] }> {
    try {
      return await save();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return { ok: false, problems: [{ field: 'domains', code: 'domain_unavailable', message: 'one of the email domains cannot be used' }] };
    }
  }

  /**
   * Turning off or deleting the last enabled connection of an organization
   * whose policy requires SSO would lock its people out of the browser.
   */
  private async guardLastEnabled(repos: SsoRepos, org: { id: string; require_sso: number }, id: string): Promise<void> {
    if (org.require_sso !== 1) return;
    const others = (await this.repo(repos).listConnections(org.id)).filter((r) => r.enabled === 1 && r.id !== id);
    if (others.length === 0) {
      throw errors.conflict('this is the organization\'s last enabled SSO connection and its policy requires SSO; turn the policy off first, or enable another connection', 'sso_required_by_policy');
    }
  }

  async update(actor: Actor, slug: string, id: string, patch: ConnectionPatch): Promise<SaveOutcome> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.repo().findConnection(org.id, id);
    if (!row) throw errors.notFound(`SSO connection "${id}"`);
    const current = decodeConnection(row);
    const domains = patch.domains ?? (await this.repo().domainsOf(org.id, id));
    const secret = patch.client_secret === undefined ? (row.client_secret_sealed ? this.secretBox.decrypt(CLIENT_SECRET_PURPOSE, row.client_secret_sealed) : null) : patch.client_secret;
    const merged = {
      issuer: patch.issuer ?? row.issuer,
      client_id: patch.client_id ?? row.client_id,
      flow: patch.flow ?? row.flow,
      response_mode: patch.response_mode ?? row.response_mode,
      allowed_tenant_ids: patch.allowed_tenant_ids ?? current.allowedTenantIds,
      client_secret: secret,
      group_roles: patch.group_roles ?? current.groupRules,
      domains,
    };
    const protocolChanged = (['issuer', 'client_id', 'flow', 'response_mode', 'allowed_tenant_ids', 'client_secret'] as const).some((k) => patch[k] !== undefined);
    const d = protocolChanged ? await this.runDiscovery(merged) : null;
    const problems = [...(d?.problems ?? []), ...(await this.checkReferences(this.store.repos, org.id, id, merged))];
    if (problems.length) return { ok: false, problems };
    const now = new Date().toISOString();
    const update = {
      issuer: merged.issuer.trim(),
      client_id: merged.client_id.trim(),
      flow: merged.flow,
      response_mode: merged.response_mode,
      client_secret_sealed: patch.client_secret === undefined ? row.client_secret_sealed : patch.client_secret ? this.secretBox.encrypt(CLIENT_SECRET_PURPOSE, patch.client_secret) : null,
      scopes: patch.scopes ? JSON.stringify(normalizeScopes(patch.scopes)) : row.scopes,
      claims: patch.claims ? JSON.stringify(patch.claims) : row.claims,
      group_roles: JSON.stringify(merged.group_roles),
      jit: patch.jit === undefined ? row.jit : patch.jit ? 1 : 0,
      allowed_tenant_ids: JSON.stringify(merged.allowed_tenant_ids.map((t) => t.toLowerCase())),
      enabled: patch.enabled === undefined ? row.enabled : patch.enabled ? 1 : 0,
      ...(d ? { metadata: JSON.stringify(d.metadata), discovered_at: now } : {}),
      updated_at: now,
    };
    const view = await this.claimingDomains(() => this.store.transaction(async (repos) => {
      const repo = this.repo(repos);
      if (row.enabled === 1 && update.enabled === 0) await this.guardLastEnabled(repos, org, id);
      await repo.updateConnection(org.id, id, update);
      if (patch.domains) await repo.setDomains(org.id, id, patch.domains);
      const changed = Object.keys(patch).map((k) => (k === 'client_secret' ? 'client_secret' : k));
      await this.audit.record(repos, actor, { orgId: org.id, action: 'sso.connection.update', targetType: 'sso_connection', targetId: id, targetName: update.issuer, details: { changed } });
      return this.view({ ...row, ...update }, org.slug, repos);
    }));
    if ('problems' in view) return view;
    return { ok: true, connection: view };
  }

  async delete(actor: Actor, slug: string, id: string): Promise<void> {
    const { org } = await this.access.require(actor, slug, 'admin');
    await this.store.transaction(async (repos) => {
      const repo = this.repo(repos);
      const row = await repo.findConnection(org.id, id);
      if (!row) throw errors.notFound(`SSO connection "${id}"`);
      if (row.enabled === 1) await this.guardLastEnabled(repos, org, id);
      await repo.deleteConnection(org.id, id);
      await this.audit.record(repos, actor, { orgId: org.id, action: 'sso.connection.delete', targetType: 'sso_connection', targetId: id, targetName: row.issuer });
    });
  }

  /** Reruns discovery for a saved connection; on success its stored metadata is refreshed. */
  async test(actor: Actor, slug: string, id: string): Promise<ConnectionTestView> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.repo().findConnection(org.id, id);
    if (!row) throw errors.notFound(`SSO connection "${id}"`);
    const c = decodeConnection(row);
    const d = await this.runDiscovery({
      issuer: row.issuer,
      client_id: row.client_id,
      flow: row.flow,
      response_mode: row.response_mode,
      allowed_tenant_ids: c.allowedTenantIds,
      client_secret: row.client_secret_sealed ? 'present' : null,
    });
    const now = new Date().toISOString();
    await this.store.transaction(async (repos) => {
      if (d.ok && d.metadata) await this.repo(repos).updateConnection(org.id, id, { metadata: JSON.stringify(d.metadata), discovered_at: now });
      await this.audit.record(repos, actor, { orgId: org.id, action: 'sso.connection.test', targetType: 'sso_connection', targetId: id, targetName: row.issuer, details: { ok: d.ok, problems: d.problems.map((p) => p.code) } });
    });
    return {
      ok: d.ok,
      problems: d.problems,
      discovered_issuer: d.issuer ?? null,
      templated_issuer: d.templated ?? false,
      signing_algorithms: d.signingAlgorithms ?? [],
      callback_uri: this.callbackUri,
      tested_at: now,
    };
  }

  /** The client secret of a connection, decrypted for the token request. */
  clientSecretOf(row: ConnectionRow): string | null {
    return row.client_secret_sealed ? this.secretBox.decrypt(CLIENT_SECRET_PURPOSE, row.client_secret_sealed) : null;
  }

  /**
   * The discovery metadata a login uses: the stored document, refreshed in the
   * background when older than maxAgeSeconds (a failed refresh keeps the old one).
   */
  async metadataForLogin(c: Connection, maxAgeSeconds: number): Promise<ProviderMetadata | null> {
    const age = c.row.discovered_at ? (Date.now() - Date.parse(c.row.discovered_at)) / 1000 : Infinity;
    if (c.metadata && age < maxAgeSeconds) return c.metadata;
    try {
      const d = await this.runDiscovery({ issuer: c.row.issuer, client_id: c.row.client_id, flow: c.row.flow, response_mode: c.row.response_mode, allowed_tenant_ids: c.allowedTenantIds });
      if (d.ok && d.metadata) {
        await this.repo().updateConnection(c.row.org_id, c.row.id, { metadata: JSON.stringify(d.metadata), discovered_at: new Date().toISOString() });
        return d.metadata;
      }
      this.logger.warn({ connection_id: c.row.id, problems: d.problems }, 'sso: refreshing discovery found problems; keeping the stored document');
    } catch (err) {
      this.logger.warn({ connection_id: c.row.id, err }, 'sso: refreshing discovery failed; keeping the stored document');
    }
    return c.metadata;
  }
}
