import { randomUUID } from 'node:crypto';
import { newToken } from '../crypto/tokens.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { Config } from '../config/config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgRow } from '../orgs/orgs.repository.ts';
import type { UserRow } from '../users/users.repository.ts';
import { deriveUsername } from '../users/provisioning.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import { AppError } from '../errors/app-error.ts';
import { fields } from '../validation/fields.ts';
import { decideEmailLink, emailEvidence, isAzureIssuer } from './account-linking.ts';
import { emailDomain } from '../users/email-domain-claims.ts';
import type { UsersService } from '../users/users.service.ts';
import { authorizationErrorFrom, buildAuthorizationRequest, checkResponseIssuer, exchangeCode, idpText, registeredError } from './oidc/client.ts';
import type { RelyingParty } from './oidc/client.ts';
import { pinnedAlgorithms } from './oidc/discovery.ts';
import { verifyIdToken } from './oidc/id-token.ts';
import type { VerifiedIdToken } from './oidc/id-token.ts';
import type { JwksRegistry } from './oidc/jwks.ts';
import { isTemplatedIssuer } from './oidc/issuer.ts';
import { OidcLoginError } from './oidc/problems.ts';
import { hashTransactionSecret } from './login-transactions.ts';
import type { LoginTransaction, TransactionStore } from './login-transactions.ts';
import type { SsoRepository } from './sso.repository.ts';
import { decodeConnection } from './sso.service.ts';
import type { Connection, GroupRule, SsoService } from './sso.service.ts';
import { groupWarnings } from './setup-advice.ts';
import type { Actor } from '../auth/actor.ts';
import { singleString, stringValues } from './verified-identity.ts';
import type { VerifiedIdentity } from './verified-identity.ts';
import type { SsoRepos } from './sso.service.ts';
import type { TeamRole } from '../auth/principal.ts';
import { ROLE_RANK } from '../auth/actor.ts';

const VERIFIER_PURPOSE = 'sso-pkce-verifier';
const TEST_REPORT_PURPOSE = 'sso-test-report';
/** How long a test login's report can be opened (by the session that started it). */
const TEST_REPORT_TTL_MS = 10 * 60_000;
/** A failed login's reason in the audit log: our message, with at most IDP_TEXT_MAX characters of the IdP's. */
const AUDIT_REASON_MAX = 500;

/**
 * A login that failed for the person at the browser, not the admin's configuration (unknown domain, no
 * account). How it is answered is its code's kind (LOGIN_PROBLEMS), like every OidcLoginError's.
 */
class LoginRefused extends OidcLoginError {}

export interface LoginStart {
  url: string;
  connectionId: string;
}

export interface LoginResult {
  user: UserRow;
  org: OrgRow;
  connectionId: string;
  returnTo: string;
}

/** A test login's end: the report, sealed for the admin's session (openTestReport), instead of a sign-in. */
export interface TestLoginDone {
  test: true;
  sealed: string;
}

/** What a test login found (the admin's "Test login" on /admin): nothing of it was written anywhere. */
export interface TestLoginReport {
  connection_id: string;
  issuer: string;
  tested_at: string;
  subject: string;
  /** The verified ID token's claims (long lists and texts shortened). */
  claims: Record<string, unknown>;
  groups: { claim: string; present: boolean; overage: boolean; values: string[] };
  account: { outcome: 'existing' | 'linked_by_email' | 'jit_created' | 'refused'; username: string | null; email: string | null; message: string; code?: string | undefined };
  /** Each team a group rule names: its member's role now and after this sign-in (null: not a member). */
  teams: Array<{ team: string; now: TeamRole | null; after: TeamRole | null; note?: string | undefined }>;
  /** Rules whose group the token did not carry. */
  unmatched_rules: GroupRule[];
  warnings: string[];
}

export interface LoginContext {
  ip: string;
  requestId: string;
}

const REPORT_LIST_MAX = 100;
const REPORT_TEXT_MAX = 500;

/** A token's claims for the test report: long lists and texts cut, so that the sealed report stays small. */
function shorten(claims: Record<string, unknown>): Record<string, unknown> {
  const cut = (x: unknown): unknown => (typeof x === 'string' && x.length > REPORT_TEXT_MAX ? `${x.slice(0, REPORT_TEXT_MAX)}…` : Array.isArray(x) ? [...x.slice(0, REPORT_LIST_MAX).map(cut), ...(x.length > REPORT_LIST_MAX ? [`… ${x.length - REPORT_LIST_MAX} more`] : [])] : x);
  return Object.fromEntries(Object.entries(claims).map(([k, v]) => [k, cut(v)]));
}

/** Starting and finishing SSO logins; identity → user; JIT; group → team roles. */
export class SsoLoginService {
  constructor(
    private readonly store: Store<SsoRepos>,
    private readonly sso: SsoService,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
    private readonly secretBox: SecretBox,
    private readonly transactions: TransactionStore,
    private readonly jwks: JwksRegistry,
    private readonly config: Pick<Config, 'allowHttpIssuers' | 'loginTransactionTtlSeconds' | 'ssoClockToleranceSeconds' | 'ssoHttpTimeoutMs' | 'ssoDiscoveryMaxAgeSeconds'>,
    private readonly logger: Logger,
  ) {}

  private repo(repos?: SsoRepos): SsoRepository {
    return (repos ?? this.store.repos).sso;
  }

  /** Home realm discovery: the enabled connection for an email address, or for an organization. */
  async findConnection(input: { email?: string | undefined; org?: string | undefined }): Promise<Connection> {
    if (input.email !== undefined) {
      const email = input.email.trim().toLowerCase();
      const at = email.lastIndexOf('@');
      const domain = at > 0 ? email.slice(at + 1) : '';
      if (!domain || !/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(domain)) throw new LoginRefused('email_invalid', 'enter your work email address (name@company.com)');
      const hit = await this.repo().connectionForDomain(domain);
      const row = hit ? await this.repo().findConnection(hit.org_id, hit.connection_id) : undefined;
      if (!row || row.enabled !== 1) throw new LoginRefused('domain_unknown', `no organization signs in with ${domain} addresses here; ask your administrator for the sign-in link of your organization`, { domain });
      return decodeConnection(row);
    }
    if (input.org !== undefined) {
      const org = await this.store.repos.orgs.findBySlug(input.org);
      const rows = org ? (await this.repo().listConnections(org.id)).filter((r) => r.enabled === 1) : [];
      // The slug is named back only when it is one (anyone can put any text in ?org=).
      const named = fields.slug.safeParse(input.org).success ? `the organization "${input.org}"` : 'this organization';
      const first = rows[0];
      if (!org || first === undefined) throw new LoginRefused('org_no_sso', `${named} has no single sign-on configured`, { org: idpText(input.org, 64) });
      return decodeConnection(first);
    }
    throw new LoginRefused('no_input', 'enter your work email address');
  }

  private relyingParty(c: Connection, metadata: NonNullable<Connection['metadata']>): RelyingParty {
    return {
      metadata,
      clientId: c.row.client_id,
      clientSecret: this.sso.clientSecretOf(c.row),
      flow: c.row.flow,
      responseMode: c.row.response_mode,
      scopes: c.scopes,
      redirectUri: this.sso.callbackUri,
      allowHttp: this.config.allowHttpIssuers,
      fetcher: this.sso.idp,
    };
  }

  /** Creates the login transaction and returns the IdP URL to send the browser to. */
  async start(c: Connection, returnTo: string, bindingCookie: string, loginHint?: string, testOf?: string): Promise<LoginStart> {
    const metadata = await this.sso.metadataForLogin(c, this.config.ssoDiscoveryMaxAgeSeconds);
    if (!metadata) throw new OidcLoginError('discovery_missing', "the connection's IdP could not be discovered; an admin should run the connection's test");
    const extra: Record<string, string> = loginHint ? { login_hint: loginHint } : {};
    // A test login asks the IdP to authenticate afresh: without it an IdP that remembers the admin signs the
    // admin in again, and nobody else can be tried from that browser.
    if (testOf) extra.prompt = 'login';
    const req = await buildAuthorizationRequest(this.relyingParty(c, metadata), extra);
    const now = Date.now();
    await this.transactions.put(
      {
        state_hash: hashTransactionSecret(req.state),
        org_id: c.row.org_id,
        connection_id: c.row.id,
        nonce: req.nonce,
        code_verifier_sealed: req.codeVerifier ? this.secretBox.encrypt(VERIFIER_PURPOSE, req.codeVerifier) : null,
        return_to: returnTo,
        binding_hash: hashTransactionSecret(bindingCookie),
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + this.config.loginTransactionTtlSeconds * 1000).toISOString(),
        test_of: testOf ?? null,
      },
      this.config.loginTransactionTtlSeconds,
    );
    return { url: req.url, connectionId: c.row.id };
  }

  /**
   * A test login (org admins of the connection's organization only): a login transaction marked with the
   * hash of the admin's session. Its callback runs every check of a real sign-in, then reports instead of
   * signing in (finish). A disabled connection can be tested: that is how one is tried before enabling it.
   */
  async startTest(actor: Actor, slug: string, connectionId: string, sessionId: string, bindingCookie: string): Promise<LoginStart> {
    const c = await this.sso.connectionForAdmin(actor, slug, connectionId);
    return this.start(c, '/admin', bindingCookie, undefined, hashTransactionSecret(sessionId));
  }

  /** A test login's report, for the session that started it only (and only for a few minutes); null otherwise. */
  openTestReport(sealed: string, sessionId: string): TestLoginReport | null {
    try {
      const { of, at, report } = JSON.parse(this.secretBox.decrypt(TEST_REPORT_PURPOSE, sealed)) as { of: string; at: number; report: TestLoginReport };
      if (of !== hashTransactionSecret(sessionId) || Date.now() - at > TEST_REPORT_TTL_MS) return null;
      return report;
    } catch {
      return null;
    }
  }

  /**
   * The pending login an IdP's answer (form_post body, the fragment page's post, or the code flow's query)
   * belongs to, taken out of the store: its state works once. It must be this browser's (the binding
   * cookie) and not expired. The callback takes it before anything else: it names the connection, whose
   * strategy then finishes the login (complete) with it. Throws OidcLoginError.
   */
  async takeTransaction(params: URLSearchParams, bindingCookie: string | undefined): Promise<LoginTransaction> {
    const state = params.get('state');
    if (!state) {
      // Nothing of an answer that no login of this browser asked for is shown: anyone can make such a link,
      // and its error_description would be their text on trackgate's page. A registered error code only.
      const code = registeredError(params);
      throw new OidcLoginError(
        params.has('error') ? 'login_incomplete' : 'state_missing',
        `the sign-in did not complete${code ? ` (the identity provider answered "${code}")` : ''}; start again from trackgate's sign-in page`,
        { error: code ?? (params.has('error') ? 'unregistered' : null) },
      );
    }
    const tx = await this.transactions.take(hashTransactionSecret(state));
    if (!tx) throw new OidcLoginError('state_unknown', 'this sign-in response was already used or has expired (each sign-in link works once, for a few minutes); start again');
    if (Date.parse(tx.expires_at) <= Date.now()) throw new OidcLoginError('transaction_expired', 'the sign-in took too long and expired; start again');
    if (!bindingCookie || hashTransactionSecret(bindingCookie) !== tx.binding_hash) {
      throw new OidcLoginError('binding_mismatch', 'this sign-in was started in another browser (or its cookies were blocked); start again in this browser');
    }
    return tx;
  }

  /**
   * The connection and organization of a taken login transaction, as they are now: enabled (a test login
   * may try a disabled connection), or OidcLoginError.
   */
  async connectionOf(tx: LoginTransaction): Promise<{ connection: Connection; org: OrgRow }> {
    const row = await this.repo().findConnection(tx.org_id, tx.connection_id);
    if (!row || (row.enabled !== 1 && !tx.test_of)) throw new OidcLoginError('connection_disabled', 'the SSO connection of this sign-in was disabled or deleted');
    const org = await this.store.repos.orgs.findById(row.org_id);
    if (!org) throw new OidcLoginError('connection_disabled', 'the organization of this SSO connection no longer exists');
    return { connection: decodeConnection(row), org };
  }

  /**
   * Finishes a login with the IdP's answer, for its taken transaction (takeTransaction) and the connection
   * it names (connectionOf): every check of the response and the ID token, then the account. A test
   * transaction ends in its sealed report instead. Throws OidcLoginError; creates no session.
   */
  async complete(c: Connection, org: OrgRow, tx: LoginTransaction, params: URLSearchParams, ctx: LoginContext): Promise<LoginResult | TestLoginDone> {
    const row = c.row;
    if (tx.connection_id !== row.id || tx.org_id !== row.org_id) throw new Error('a login transaction was completed with another connection than its own');
    const state = params.get('state') ?? '';
    const testOf = tx.test_of ?? null;
    try {
      const idpError = authorizationErrorFrom(params);
      if (idpError) throw idpError;
      const metadata = c.metadata;
      if (!metadata) throw new OidcLoginError('discovery_missing', "the connection's IdP was never discovered; an admin should run the connection's test");
      checkResponseIssuer(params, metadata, c.allowedTenantIds);
      let idToken: string;
      if (row.flow === 'code') {
        if (params.has('id_token')) throw new OidcLoginError('unexpected_response', 'the IdP answered with an ID token, but the connection uses the code flow; check the grant type of the application in the IdP');
        if (!tx.code_verifier_sealed) throw new OidcLoginError('unexpected_response', 'this login attempt has no PKCE verifier');
        const verifier = this.secretBox.decrypt(VERIFIER_PURPOSE, tx.code_verifier_sealed);
        idToken = await exchangeCode(this.relyingParty(c, metadata), params, state, verifier, this.config.ssoHttpTimeoutMs);
      } else {
        const t = params.get('id_token');
        if (!t) throw new OidcLoginError('id_token_missing', 'the IdP\'s answer has no ID token; the application in the IdP must allow the implicit grant for ID tokens');
        idToken = t;
      }
      const verified = await verifyIdToken(idToken, this.jwks.get(metadata.jwks_uri), {
        issuer: metadata.issuer,
        templated: isTemplatedIssuer(metadata.issuer),
        allowedTenantIds: c.allowedTenantIds,
        clientId: row.client_id,
        nonce: tx.nonce,
        algorithms: pinnedAlgorithms(metadata),
        clockToleranceSeconds: this.config.ssoClockToleranceSeconds,
      });
      // A test transaction never signs in: every check above ran, the rest is read, not written.
      return await this.signInOrReport(c, org, this.oidcIdentity(c, verified), { testOf, returnTo: tx.return_to }, ctx);
    } catch (err) {
      // A failed test is the admin's to read on the error page, not a sign-in failure of the organization.
      if (!testOf) await this.recordFailure(org.id, row.id, err, ctx);
      throw err;
    }
  }

  /**
   * Ends a sign-in whose answer another protocol's strategy verified (SAML): a test login's report, sealed for
   * the admin's session, or the account by the same rules as OIDC's. A failure is audited like OIDC's.
   */
  async completeVerified(c: Connection, identity: VerifiedIdentity, tx: { testOf: string | null; returnTo: string }, ctx: LoginContext): Promise<LoginResult | TestLoginDone> {
    const org = await this.store.repos.orgs.findById(c.row.org_id);
    if (!org) throw new OidcLoginError('connection_disabled', 'the organization of this SSO connection no longer exists');
    try {
      return await this.signInOrReport(c, org, identity, tx, ctx);
    } catch (err) {
      if (!tx.testOf) await this.recordFailure(org.id, c.row.id, err, ctx);
      throw err;
    }
  }

  /**
   * A verified identity's end, whatever the protocol: a test transaction's report (read, never written), sealed
   * for the admin's session that started it; otherwise the account, by resolveUser's rules. The caller audits failures.
   */
  private async signInOrReport(c: Connection, org: OrgRow, identity: VerifiedIdentity, tx: { testOf: string | null; returnTo: string }, ctx: LoginContext): Promise<LoginResult | TestLoginDone> {
    if (tx.testOf) return { test: true, sealed: this.secretBox.encrypt(TEST_REPORT_PURPOSE, JSON.stringify({ of: tx.testOf, at: Date.now(), report: await this.dryRun(c, org, identity) })) };
    const user = await this.resolveUser(c, org, identity, ctx);
    return { user, org, connectionId: c.row.id, returnTo: tx.returnTo };
  }

  /** A sign-in refused before it named anyone (a SAML response that did not verify): audited as sso.login_failed. */
  async loginFailed(c: Connection, err: unknown, ctx: LoginContext): Promise<void> {
    await this.recordFailure(c.row.org_id, c.row.id, err, ctx);
  }

  private async recordFailure(orgId: string, connectionId: string, err: unknown, ctx: LoginContext): Promise<void> {
    const e = err instanceof OidcLoginError ? err : null;
    try {
      await this.audit.record(this.store.repos, { type: 'anonymous', id: null, name: null, ip: ctx.ip, requestId: ctx.requestId }, {
        orgId,
        action: 'sso.login_failed',
        targetType: 'sso_connection',
        targetId: connectionId,
        // Whoever is at the browser (this can be anyone who started a login) writes parts of the IdP's answer:
        // the reason is kept to one clean line of bounded length.
        details: { code: e?.code ?? 'internal_error', reason: idpText(e?.message ?? 'internal error', AUDIT_REASON_MAX) },
      });
    } catch (auditErr) {
      this.logger.error({ err: auditErr }, 'sso: could not record a failed login');
    }
  }

  /** Identity key: Azure AD (tid, oid) under a multi-tenant issuer, else (iss, sub). */
  static identityKey(v: VerifiedIdToken, templated: boolean): { key: string; tenantId: string | null; objectId: string | null } {
    const oid = typeof v.claims.oid === 'string' ? v.claims.oid.toLowerCase() : null;
    if (templated && v.tenantId && oid) return { key: `azure|${v.tenantId}|${oid}`, tenantId: v.tenantId, objectId: oid };
    return { key: `oidc|${v.issuer}|${v.subject}`, tenantId: v.tenantId ?? null, objectId: oid };
  }

  /** The API's own email rule: a claim like "a@b.example,x" would reach the upstream's X-Trackgate-Email as two addresses. */
  static mappedEmail(raw: unknown): string | null {
    const value = singleString(raw);
    const parsed = value ? fields.email.safeParse(value) : null;
    return parsed?.success ? parsed.data : null;
  }

  /**
   * What a verified ID token says of who it is, read once for a sign-in (resolveUser) and a Test login
   * (dryRun) alike, so that the two can never judge an email differently: the identity's key, the mapped
   * email when it passes the API's own email rule, the evidence that it is verified, and the groups.
   */
  private oidcIdentity(c: Connection, v: VerifiedIdToken): VerifiedIdentity {
    const templated = c.metadata ? isTemplatedIssuer(c.metadata.issuer) : false;
    const id = SsoLoginService.identityKey(v, templated);
    // email_verified (and xms_edov) speak of the standard "email" claim only: an address mapped from another
    // claim (upn, preferred_username, a profile field people can edit) has no evidence, whatever they say.
    const evidence = c.claims.email === 'email' ? emailEvidence(v.claims, isAzureIssuer(c.metadata?.issuer ?? c.row.issuer)) : null;
    // Azure AD's groups overage (`hasgroups`, or `_claim_names.groups`): the token does not list the groups.
    const claimName = c.claims.groups;
    const claimNames = v.claims._claim_names as Record<string, unknown> | undefined;
    const overage = v.claims.hasgroups === true || (!!claimNames && typeof claimNames === 'object' && (claimName in claimNames || 'groups' in claimNames));
    const raw = v.claims[claimName];
    return {
      protocol: 'oidc',
      issuer: v.issuer,
      subject: v.subject,
      id,
      claims: v.claims,
      email: SsoLoginService.mappedEmail(v.claims[c.claims.email]),
      evidence,
      groups: { name: claimName, present: raw !== undefined, overage, values: stringValues(raw) },
      username: singleString(v.claims[c.claims.username]),
      name: singleString(v.claims[c.claims.name]),
    };
  }

  /**
   * The user for a verified identity, in one transaction:
   * 1. the account the identity is bound to (issuer + subject, or Azure tid + oid);
   * 2. else an account of this organization with the token's email, linked only
   *    when decideEmailLink's rules all hold (verified email, a domain of this
   *    connection, an account bound to no identity yet; never the instance
   *    operator through another organization's connection);
   * 3. else, with JIT on and the email used nowhere, a new account — never
   *    someone else's.
   * Refuses deactivated users. Then syncs group → team roles.
   */
  private async resolveUser(c: Connection, org: OrgRow, v: VerifiedIdentity, ctx: LoginContext): Promise<UserRow> {
    const { id, email, evidence } = v;
    const now = new Date().toISOString();
    const once = () => this.invalidator.transaction(this.store, async (repos, invalidate) => {
      let changed = false;
      const repo = this.repo(repos);
      let identity = await repo.findIdentity(org.id, id.key);
      if (!identity) {
        // A first sign-in (rare: once per person) takes the connection row's lock and looks again, so that two
        // at once of one person (tabs, a double click) run one after the other: the second finds the identity
        // the first linked, instead of deciding on a half-seen state (no identity yet, but the email now used).
        await repo.lockConnection(org.id, c.row.id);
        identity = await repo.findIdentity(org.id, id.key);
      }
      let user: UserRow | undefined;
      let how: 'identity' | 'email_link' | 'jit';
      let linkRule: { evidence: string; domain: string } | null = null;
      if (identity) {
        user = await repos.users.findById(org.id, identity.user_id);
        if (!user) throw new LoginRefused('identity_orphaned', `your sign-in identity is linked to an account of ${org.slug} that no longer exists; an administrator of ${org.slug} must unlink it`);
        how = 'identity';
        await repo.touchIdentity(org.id, identity.id, now);
      } else if (email && (user = await repos.users.findByEmail(org.id, email))) {
        // Lock the account's row first, so that two first sign-ins with different identities cannot both see it unbound.
        await repos.users.update(org.id, user.id, { updated_at: now });
        const decision = decideEmailLink(
          { username: user.username, orgId: user.org_id, instanceAdmin: user.instance_admin === 1, identities: (await repo.identitiesOfUser(org.id, user.id)).length },
          { orgSlug: org.slug, email, evidence, connectionOrgId: c.row.org_id, connectionDomains: await repo.domainsOf(org.id, c.row.id) },
        );
        if (!decision.ok) throw new LoginRefused(decision.code, decision.message, { email });
        how = 'email_link';
        linkRule = decision.rule;
      } else {
        if (!c.row.jit || c.row.jit !== 1) {
          throw new LoginRefused('no_account', `you have no account in the organization "${org.slug}" yet, and automatic provisioning (JIT) is off for this connection; ask an administrator of ${org.slug} to add you`, { sub: v.subject });
        }
        if (!email) {
          throw new OidcLoginError(
            'email_missing',
            v.protocol === 'saml'
              ? `the SAML assertion carries no usable email in the "${c.claims.email}" attribute, which a new account needs; configure the IdP to send it, or map another attribute in the connection's claims.email`
              : `the ID token carries no usable email in the "${c.claims.email}" claim, which a new account needs; configure the IdP to send it (scope "email"), or map another claim in the connection's claims.email`,
          );
        }
        const owner = await repo.connectionForDomain(emailDomain(email) ?? '');
        // Emails are unique on the instance: an address of a domain another organization claimed is that
        // organization's to create. Said without naming it (nor that it exists).
        if ((owner && owner.org_id !== org.id) || (await repos.users.emailTaken(email))) {
          throw new LoginRefused('email_unavailable', `the email ${email} cannot be used for a new account in ${org.slug}; ask an administrator of ${org.slug}`);
        }
        const preferred = v.username ?? email;
        const username = await deriveUsername(repos, preferred);
        const display = v.name ?? username;
        user = await this.users.insertUser(repos, org, { email, username, role: 'member', display_name: display.slice(0, 200) });
        how = 'jit';
        changed = true;
        await this.audit.record(repos, { type: 'user', id: user.id, name: user.username, ip: ctx.ip, requestId: ctx.requestId }, {
          orgId: org.id,
          action: 'user.create',
          targetType: 'user',
          targetId: user.id,
          targetName: user.username,
          details: { via: 'sso_jit', connection_id: c.row.id, email, email_evidence: evidence },
        });
      }
      if (user.instance_admin === 1 && user.org_id !== c.row.org_id) {
        throw new LoginRefused('operator_not_linkable', `the account ${user.username} cannot be signed in to through this organization's SSO connection`);
      }
      if (user.status !== 'active') {
        throw new LoginRefused('user_deactivated', `the account ${user.username} in ${org.slug} is deactivated; ask an administrator of ${org.slug}`);
      }
      if (!identity) {
        await repo.insertIdentity({
          id: randomUUID(),
          org_id: org.id,
          user_id: user.id,
          connection_id: c.row.id,
          identity_key: id.key,
          issuer: v.issuer,
          subject: v.subject,
          tenant_id: id.tenantId,
          object_id: id.objectId,
          created_at: now,
          last_login_at: now,
        });
        await this.audit.record(repos, { type: 'user', id: user.id, name: user.username, ip: ctx.ip, requestId: ctx.requestId }, {
          orgId: org.id,
          action: 'sso.identity.link',
          targetType: 'user',
          targetId: user.id,
          targetName: user.username,
          details: { connection_id: c.row.id, issuer: v.issuer, subject: v.subject, ...(id.tenantId ? { tenant_id: id.tenantId } : {}), rule: how === 'jit' ? 'jit_new_account' : 'verified_email_in_connection_domain', ...(linkRule ? { email_evidence: linkRule.evidence, email_domain: linkRule.domain } : {}) },
        });
      }
      const synced = await this.syncGroups(repos, c, org, user, v, now);
      if (synced.length) changed = true;
      if (changed) invalidate.all();
      await this.audit.record(repos, { type: 'user', id: user.id, name: user.username, ip: ctx.ip, requestId: ctx.requestId }, {
        orgId: org.id,
        action: 'sso.login',
        targetType: 'user',
        targetId: user.id,
        targetName: user.username,
        details: { connection_id: c.row.id, how, issuer: v.issuer, ...(linkRule ? { link_rule: `${linkRule.evidence}+connection_domain+unbound_account`, email_domain: linkRule.domain } : {}), ...(id.tenantId ? { tenant_id: id.tenantId } : {}), ...(synced.length ? { team_changes: synced } : {}) },
      });
      return user;
    });
    // A unique race the connection lock does not order (the same email created at that moment by an admin
    // or another way in, a derived username taken meanwhile) is run again: the second run sees what the
    // other committed and decides on it. Only races are retried, and only twice.
    for (let attempt = 1; ; attempt++) {
      try {
        return await once();
      } catch (err) {
        const race = isUniqueViolation(err) || (err instanceof AppError && err.code === 'user_taken');
        if (!race) throw err;
        if (attempt >= 3) throw new LoginRefused('login_race', 'another sign-in of this identity was being completed at the same moment; sign in again');
      }
    }
  }

  /**
   * Group rules → team memberships, on every login. Teams named by a rule are
   * managed: the user gets the highest role of the rules their groups match,
   * and loses membership when no rule matches any more. Other teams are not
   * touched. With Azure AD's groups overage (`hasgroups`, or `_claim_names.groups`)
   * the token does not list the groups: memberships stay as they were.
   */
  private async syncGroups(repos: SsoRepos, c: Connection, org: OrgRow, user: UserRow, v: VerifiedIdentity, now: string): Promise<string[]> {
    if (c.groupRules.length === 0) return [];
    if (v.groups.overage) {
      this.logger.warn({ org: org.slug, user: user.username, connection_id: c.row.id }, 'sso: groups overage in the ID token (hasgroups/_claim_names): the token does not list the groups; team memberships left unchanged');
      await this.audit.record(repos, { type: 'user', id: user.id, name: user.username }, {
        orgId: org.id,
        action: 'sso.groups_overage',
        targetType: 'user',
        targetId: user.id,
        targetName: user.username,
        details: { connection_id: c.row.id },
      });
      return [];
    }
    const groups = new Set(v.groups.values);
    const desired = new Map<string, TeamRole>();
    for (const r of c.groupRules) {
      if (!groups.has(r.group)) continue;
      const have = desired.get(r.team);
      if (!have || ROLE_RANK[r.role] > ROLE_RANK[have]) desired.set(r.team, r.role);
    }
    const changes: string[] = [];
    for (const teamName of new Set(c.groupRules.map((r) => r.team))) {
      const team = await repos.teams.findByName(org.id, teamName);
      if (!team) {
        this.logger.warn({ org: org.slug, team: teamName, connection_id: c.row.id }, 'sso: a group rule names a team that does not exist; skipped');
        continue;
      }
      // SCIM is the one source of a SCIM-owned team's members: two sources would undo each other's changes.
      if (await repos.scimGroups.isScimOwned(org.id, team.id)) {
        this.logger.debug({ org: org.slug, team: teamName, connection_id: c.row.id }, 'sso: a group rule names a team managed by SCIM; its membership is left to SCIM');
        continue;
      }
      const member = await repos.teams.getMember(org.id, team.id, user.id);
      const want = desired.get(teamName);
      if (want && member?.role !== want) {
        await repos.teams.putMember(org.id, team.id, user.id, want, now);
        changes.push(`${teamName}:${member ? member.role : 'none'}->${want}`);
      } else if (!want && member) {
        await repos.teams.removeMember(org.id, team.id, user.id);
        changes.push(`${teamName}:${member.role}->none`);
      }
    }
    return changes;
  }

  /**
   * What resolveUser and syncGroups would do with this token, decided by the same rules and only read:
   * no user, identity, membership, session or audit row is written.
   */
  private async dryRun(c: Connection, org: OrgRow, v: VerifiedIdentity): Promise<TestLoginReport> {
    const repos = this.store.repos;
    const repo = this.repo(repos);
    const { id, email, evidence } = v;
    const refused = (code: string, message: string): TestLoginReport['account'] => ({ outcome: 'refused', username: null, email, message, code });
    let user: UserRow | undefined;
    let account: TestLoginReport['account'];
    const identity = await repo.findIdentity(org.id, id.key);
    if (identity) {
      user = await repos.users.findById(org.id, identity.user_id);
      account = user ? { outcome: 'existing', username: user.username, email: user.email, message: `the account ${user.username}, already linked to this identity` } : refused('identity_orphaned', 'the identity is linked to an account that no longer exists; unlink it');
    } else if (email && (user = await repos.users.findByEmail(org.id, email))) {
      const decision = decideEmailLink(
        { username: user.username, orgId: user.org_id, instanceAdmin: user.instance_admin === 1, identities: (await repo.identitiesOfUser(org.id, user.id)).length },
        { orgSlug: org.slug, email, evidence, connectionOrgId: c.row.org_id, connectionDomains: await repo.domainsOf(org.id, c.row.id) },
      );
      account = decision.ok
        ? { outcome: 'linked_by_email', username: user.username, email, message: `the existing account ${user.username}, linked to this identity by its verified email (${decision.rule.evidence}, domain ${decision.rule.domain})` }
        : refused(decision.code, decision.message);
      if (!decision.ok) user = undefined;
    } else if (c.row.jit !== 1) {
      account = refused('no_account', `no account of ${org.slug} has this identity or the email ${email ?? '(none)'}, and JIT is off: the sign-in would be refused`);
    } else if (!email) {
      account = refused('email_missing', `the ${v.protocol === 'saml' ? 'SAML assertion' : 'ID token'} carries no usable email in the "${c.claims.email}" ${v.protocol === 'saml' ? 'attribute' : 'claim'}, which a new account needs`);
    } else {
      const owner = await repo.connectionForDomain(emailDomain(email) ?? '');
      account =
        (owner && owner.org_id !== org.id) || (await repos.users.emailTaken(email))
          ? refused('email_unavailable', `the email ${email} cannot be used for a new account in ${org.slug}`)
          : { outcome: 'jit_created', username: await deriveUsername(repos, v.username ?? email), email, message: `a new account would be created (JIT) as a member of ${org.slug}` };
    }
    if (user && user.instance_admin === 1 && user.org_id !== c.row.org_id) account = refused('operator_not_linkable', `the account ${user.username} cannot be signed in to through this organization's SSO connection`);
    else if (user && user.status !== 'active') account = refused('user_deactivated', `the account ${user.username} is deactivated`);

    const claimName = v.groups.name;
    const { overage, values } = v.groups;
    const groups = new Set(values);
    const desired = new Map<string, TeamRole>();
    for (const r of c.groupRules) {
      if (!groups.has(r.group)) continue;
      const have = desired.get(r.team);
      if (!have || ROLE_RANK[r.role] > ROLE_RANK[have]) desired.set(r.team, r.role);
    }
    const existing = account.outcome === 'existing' || account.outcome === 'linked_by_email' ? user : undefined;
    const teams: TestLoginReport['teams'] = [];
    for (const teamName of new Set(c.groupRules.map((r) => r.team))) {
      const team = await repos.teams.findByName(org.id, teamName);
      const now = team && existing ? ((await repos.teams.getMember(org.id, team.id, existing.id))?.role ?? null) : null;
      if (!team) teams.push({ team: teamName, now: null, after: null, note: 'the team does not exist: the rule is skipped' });
      else if (await repos.scimGroups.isScimOwned(org.id, team.id)) teams.push({ team: teamName, now, after: now, note: 'managed by SCIM: group rules leave it alone' });
      else if (account.outcome === 'refused') teams.push({ team: teamName, now, after: now, note: 'the sign-in would be refused' });
      else if (overage) teams.push({ team: teamName, now, after: now, note: 'groups overage: the token does not list the groups, memberships stay as they are' });
      else teams.push({ team: teamName, now, after: desired.get(teamName) ?? null });
    }
    const unmatched = overage ? [] : c.groupRules.filter((r) => !groups.has(r.group));
    const warnings: string[] = [];
    if (c.groupRules.length && !v.groups.present && !overage) {
      warnings.push(
        v.protocol === 'saml'
          ? `the SAML assertion has no "${claimName}" attribute: the group rules gave nobody a team`
          : `the ID token has no "${claimName}" claim${c.scopes.includes('groups') ? '' : ' — the connection does not request the "groups" scope'}: the group rules gave nobody a team`,
      );
    }
    for (const r of unmatched) warnings.push(`the rule's group "${r.group}" (→ ${r.team} ${r.role}) did not appear in the ${v.protocol === 'saml' ? 'assertion' : 'token'}`);
    if (v.protocol === 'oidc' && c.groupRules.length && (!v.groups.present || unmatched.length)) warnings.push(...groupWarnings({ issuer: c.row.issuer, scopes: c.scopes, groupRules: c.groupRules, groupsClaim: claimName }).map((w) => w.message));
    return {
      connection_id: c.row.id,
      issuer: v.issuer,
      tested_at: new Date().toISOString(),
      subject: v.subject,
      claims: shorten(v.claims),
      groups: { claim: claimName, present: v.groups.present, overage, values: values.slice(0, REPORT_LIST_MAX) },
      account,
      teams,
      unmatched_rules: unmatched,
      warnings,
    };
  }

  static newBinding(): string {
    return newToken(24);
  }
}
