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
import { resolveSamlSettings, SAML_INPUT_FIELDS } from './saml/connection-input.ts';
import type { SamlInput } from './saml/connection-input.ts';
import { certificateInfo, connectionKind, SAML_DEFAULT_CLAIMS, samlSettingsOf } from './saml/settings.ts';
import type { SamlSettings } from './saml/settings.ts';

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
  kind?: 'oidc' | undefined;
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
/** A SAML connection: the IdP side from metadata or by hand (SamlInput), and the same mapping, domains, rules and JIT as OIDC. */
export type SamlConnectionInput = SamlInput & Pick<ConnectionInput, 'claims' | 'domains' | 'group_roles' | 'jit' | 'enabled'> & { kind: 'saml' };
export type ConnectionPatch = Partial<ConnectionInput> & SamlInput;

/** The fields of an OIDC connection that a SAML one does not have (refused on a SAML connection's edit). */
const OIDC_ONLY_FIELDS = ['issuer', 'client_id', 'flow', 'response_mode', 'client_secret', 'scopes', 'allowed_tenant_ids'] as const;

/** The API's answers about a connection: their response schemas' types, so that views and schemas cannot drift. */
export type ConnectionView = z.output<typeof connectionOut>;
export type ConnectionTestView = z.output<typeof connectionTestOut>;

/** Everything a login needs from a connection, decoded. */
export interface Connection {
  row: ConnectionRow;
  kind: 'oidc' | 'saml';
  /** A SAML connection's settings; null on an OIDC one. */
  saml: SamlSettings | null;
  scopes: string[];
  claims: Required<{ [K in keyof ClaimMapping]: string }>;
  groupRules: GroupRule[];
  allowedTenantIds: string[];
  metadata: ProviderMetadata | null;
}

export type SaveOutcome = { ok: true; connection: ConnectionView } | { ok: false; problems: DiscoveryProblem[] };

export function decodeConnection(row: ConnectionRow): Connection {
  const kind = connectionKind(row);
  return {
    row,
    kind,
    saml: kind === 'saml' ? samlSettingsOf(row) : null,
    scopes: JSON.parse(row.scopes) as string[],
    claims: { ...(kind === 'saml' ? SAML_DEFAULT_CLAIMS : DEFAULT_CLAIMS), ...(JSON.parse(row.claims) as ClaimMapping) },
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

  /** Our SP's URLs for a SAML connection: its entity ID (the audience the IdP must name), the ACS and the SP metadata. */
  samlEndpoints(connectionId: string): { spEntityId: string; acsUrl: string; metadataUrl: string } {
    const base = `${this.config.publicUrl}/login/saml/${connectionId}`;
    return { spEntityId: base, acsUrl: `${base}/acs`, metadataUrl: `${base}/metadata` };
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
      warnings: c.kind === 'saml' ? this.samlWarnings(c) : groupWarnings({ issuer: row.issuer, scopes: c.scopes, groupRules: c.groupRules, groupsClaim: c.claims.groups }),
      kind: c.kind,
      saml: c.saml ? this.samlView(row.id, c.saml) : null,
    };
  }

  private samlView(id: string, s: SamlSettings): NonNullable<ConnectionView['saml']> {
    const sp = this.samlEndpoints(id);
    return {
      entity_id: s.entity_id,
      sso_url: s.sso_url,
      certificates: s.certificates.map(certificateInfo),
      metadata_url: s.metadata_url,
      want_assertions_signed: s.want_assertions_signed,
      want_response_signed: s.want_response_signed,
      allow_idp_initiated: s.allow_idp_initiated,
      sp_entity_id: sp.spEntityId,
      acs_url: sp.acsUrl,
      sp_metadata_url: sp.metadataUrl,
    };
  }

  private samlWarnings(c: Connection): ConnectionView['warnings'] {
    const out: ConnectionView['warnings'] = [];
    if (c.saml?.allow_idp_initiated) {
      out.push({ field: 'allow_idp_initiated', code: 'idp_initiated_on', message: 'IdP-initiated sign-in is on: a response nobody here asked for is accepted, and it cannot be bound to the browser that receives it (login CSRF: someone can sign a person in as someone else). Turn it off unless the IdP\'s app launcher is needed' });
    }
    for (const cert of (c.saml?.certificates ?? []).map(certificateInfo)) {
      if (cert.expired) out.push({ field: 'certificates', code: 'certificate_expired', message: `the IdP certificate ${cert.fingerprint_sha256} expired on ${cert.not_after}; responses signed with it are still checked against it, but the IdP should have rolled over` });
    }
    return out;
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

  /** A connection, decoded, as it is now (a SAML sign-in looks again before it signs anyone in). */
  async connectionById(orgId: string, id: string): Promise<Connection | null> {
    const row = await this.repo().findConnection(orgId, id);
    return row ? decodeConnection(row) : null;
  }

  /** A SAML connection by its id alone (its SP metadata and ACS URLs name nothing else); null when there is none. */
  async samlConnection(id: string): Promise<Connection | null> {
    const row = await this.repo().findConnectionById(id);
    return row && connectionKind(row) === 'saml' ? decodeConnection(row) : null;
  }

  /** A connection, decoded, for an admin of its organization (the test login starts from it). */
  async connectionForAdmin(actor: Actor, slug: string, id: string): Promise<Connection> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const row = await this.repo().findConnection(org.id, id);
    if (!row) throw errors.notFound(`SSO connection "${id}"`);
    return decodeConnection(row);
  }

  async create(actor: Actor, slug: string, input: ConnectionInput | SamlConnectionInput): Promise<SaveOutcome> {
    if (input.kind === 'saml') return this.createSaml(actor, slug, input);
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
      kind: 'oidc',
      saml: null,
      created_at: now,
      updated_at: now,
    };
    return this.insertConnection(actor, org, row, input.domains, { client_id: row.client_id, flow: row.flow, response_mode: row.response_mode, domains: input.domains, jit: input.jit, has_client_secret: row.client_secret_sealed !== null });
  }

  /** A new connection of either protocol: the row, its domains (claimed, or the problem) and its audit event, in one transaction. */
  private async insertConnection(actor: Actor, org: { id: string; slug: string }, row: ConnectionRow, domains: string[], details: Record<string, unknown>): Promise<SaveOutcome> {
    const view = await this.claimingDomains(() => this.store.transaction(async (repos) => {
      const repo = this.repo(repos);
      await repo.insertConnection(row);
      await repo.setDomains(org.id, row.id, domains);
      await this.audit.record(repos, actor, { orgId: org.id, action: 'sso.connection.create', targetType: 'sso_connection', targetId: row.id, targetName: row.issuer, details });
      return this.view(row, org.slug, repos);
    }));
    if ('problems' in view) return view;
    return { ok: true, connection: view };
  }

  /** A SAML connection: its metadata read (pasted or fetched), the signing policy checked, references checked, as OIDC's. */
  private async createSaml(actor: Actor, slug: string, input: SamlConnectionInput): Promise<SaveOutcome> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const settings = await resolveSamlSettings(input, null, this.idp);
    const refs = await this.checkReferences(this.store.repos, org.id, null, input);
    if (!settings.ok) throw errors.validation(`the SAML connection was not saved: ${settings.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, [...settings.problems, ...refs]);
    if (refs.length) return { ok: false, problems: refs };
    const now = new Date().toISOString();
    const row: ConnectionRow = {
      id: randomUUID(),
      org_id: org.id,
      // The IdP's entity ID is the issuer of its assertions: identities and the audit name the IdP by it.
      issuer: settings.settings.entity_id,
      client_id: '',
      flow: 'implicit',
      response_mode: 'form_post',
      client_secret_sealed: null,
      scopes: '[]',
      claims: JSON.stringify({ ...SAML_DEFAULT_CLAIMS, ...input.claims }),
      group_roles: JSON.stringify(input.group_roles),
      jit: input.jit ? 1 : 0,
      allowed_tenant_ids: '[]',
      enabled: input.enabled ? 1 : 0,
      metadata: null,
      discovered_at: input.metadata_url !== undefined || input.metadata_xml !== undefined ? now : null,
      kind: 'saml',
      saml: JSON.stringify(settings.settings),
      created_at: now,
      updated_at: now,
    };
    const st = settings.settings;
    return this.insertConnection(actor, org, row, input.domains, {
      kind: 'saml',
      sso_url: st.sso_url,
      metadata_url: st.metadata_url,
      certificates: st.certificates.map((c) => certificateInfo(c).fingerprint_sha256),
      want_assertions_signed: st.want_assertions_signed,
      want_response_signed: st.want_response_signed,
      allow_idp_initiated: st.allow_idp_initiated,
      domains: input.domains,
      jit: input.jit,
    });
  }

  private async updateSaml(actor: Actor, org: { id: string; slug: string; require_sso: number }, row: ConnectionRow, patch: ConnectionPatch): Promise<SaveOutcome> {
    const wrong = OIDC_ONLY_FIELDS.filter((k) => patch[k] !== undefined);
    if (wrong.length) throw errors.validation(`a SAML connection has no ${wrong.join(', ')}`, wrong.map((f) => ({ field: f, code: 'not_saml', message: 'is an OIDC setting; a SAML connection does not have it' })));
    const current = decodeConnection(row);
    const samlChanged = SAML_INPUT_FIELDS.some((k) => patch[k] !== undefined);
    const settings = samlChanged ? await resolveSamlSettings(patch, current.saml, this.idp) : null;
    if (settings && !settings.ok) throw errors.validation(`the SAML connection was not saved: ${settings.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, settings.problems);
    const domains = patch.domains ?? (await this.repo().domainsOf(org.id, row.id));
    const groupRules = patch.group_roles ?? current.groupRules;
    const problems = await this.checkReferences(this.store.repos, org.id, row.id, { domains, group_roles: groupRules });
    if (problems.length) return { ok: false, problems };
    const now = new Date().toISOString();
    const update = {
      ...(settings?.ok ? { issuer: settings.settings.entity_id, saml: JSON.stringify(settings.settings), ...(patch.metadata_url !== undefined || patch.metadata_xml !== undefined ? { discovered_at: now } : {}) } : {}),
      claims: patch.claims ? JSON.stringify({ ...SAML_DEFAULT_CLAIMS, ...patch.claims }) : row.claims,
      group_roles: JSON.stringify(groupRules),
      jit: patch.jit === undefined ? row.jit : patch.jit ? 1 : 0,
      enabled: patch.enabled === undefined ? row.enabled : patch.enabled ? 1 : 0,
      updated_at: now,
    };
    const view = await this.claimingDomains(() => this.store.transaction(async (repos) => {
      const repo = this.repo(repos);
      if (row.enabled === 1 && update.enabled === 0) await this.guardLastEnabled(repos, org, row.id);
      await repo.updateConnection(org.id, row.id, update);
      if (patch.domains) await repo.setDomains(org.id, row.id, patch.domains);
      // metadata_xml is named, not copied: the audit keeps what changed, not a document.
      await this.audit.record(repos, actor, { orgId: org.id, action: 'sso.connection.update', targetType: 'sso_connection', targetId: row.id, targetName: update.issuer ?? row.issuer, details: { kind: 'saml', changed: Object.keys(patch) } });
      return this.view({ ...row, ...update }, org.slug, repos);
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
    if (connectionKind(row) === 'saml') return this.updateSaml(actor, org, row, patch);
    const samlFields = SAML_INPUT_FIELDS.filter((k) => patch[k] !== undefined);
    if (samlFields.length) throw errors.validation(`an OIDC connection has no ${samlFields.join(', ')}`, samlFields.map((f) => ({ field: f, code: 'not_oidc', message: 'is a SAML setting; an OIDC connection does not have it' })));
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
    if (c.saml) return this.testSaml(actor, org.id, row, c.saml);
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

  /**
   * A SAML connection's test: its metadata URL fetched and read again (the stored settings refreshed when it
   * reads), and the certificates' expiry. A connection made from pasted XML or by hand has nothing to fetch.
   */
  private async testSaml(actor: Actor, orgId: string, row: ConnectionRow, s: SamlSettings): Promise<ConnectionTestView> {
    const now = new Date().toISOString();
    const r = s.metadata_url ? await resolveSamlSettings({ metadata_url: s.metadata_url }, s, this.idp) : ({ ok: true, settings: s } as const);
    const problems = r.ok ? r.settings.certificates.map(certificateInfo).filter((ci) => ci.expired).map((ci) => ({ field: 'certificates', code: 'certificate_expired', message: `the certificate ${ci.fingerprint_sha256} expired on ${ci.not_after}` })) : r.problems;
    const ok = r.ok && problems.length === 0;
    await this.store.transaction(async (repos) => {
      if (r.ok && s.metadata_url) await this.repo(repos).updateConnection(orgId, row.id, { issuer: r.settings.entity_id, saml: JSON.stringify(r.settings), discovered_at: now });
      await this.audit.record(repos, actor, { orgId, action: 'sso.connection.test', targetType: 'sso_connection', targetId: row.id, targetName: row.issuer, details: { ok, problems: problems.map((p) => p.code) } });
    });
    return { ok, problems, discovered_issuer: r.ok ? r.settings.entity_id : null, templated_issuer: false, signing_algorithms: [], callback_uri: this.samlEndpoints(row.id).acsUrl, tested_at: now };
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
