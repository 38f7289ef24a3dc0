import { AsyncLocalStorage } from 'node:async_hooks';
import { SAML, SamlStatusError, Strategy as SamlStrategy, ValidateInResponseTo } from '@node-saml/passport-saml';
import type { CacheProvider, Profile, VerifyWithRequest } from '@node-saml/passport-saml';
import type { Strategy as PassportStrategy } from 'passport-strategy';
import type { Logger } from '../../log/logger.ts';
import { idpText } from '../oidc/client.ts';
import { OidcLoginError } from '../oidc/problems.ts';
import { hashTransactionSecret } from '../login-transactions.ts';
import type { LoginTransaction, TransactionStore } from '../login-transactions.ts';
import { strategyConnection } from '../passport/connection-strategies.ts';
import type { ConnectionStrategies, SsoStrategyConnection } from '../passport/connection-strategies.ts';
import { SsoLoginService } from '../sso-login.service.ts';
import type { LoginContext, LoginResult, TestLoginDone } from '../sso-login.service.ts';
import type { Connection, SsoService } from '../sso.service.ts';
import { singleString, stringValues } from '../verified-identity.ts';
import type { VerifiedIdentity } from '../verified-identity.ts';

/** A login being started (its transaction is written when node-saml names the AuthnRequest's ID). */
interface StartContext {
  orgId: string;
  connectionId: string;
  returnTo: string;
  binding: string;
  testOf: string | null;
}

/**
 * One request's view of the SAML transaction: node-saml asks its cacheProvider for the request ID it
 * generates (at a start) and for the InResponseTo it checks (at the ACS) through calls that carry no request,
 * so the request's context rides along in AsyncLocalStorage.
 */
interface RequestContext {
  start?: StartContext;
  /** At the ACS: the transaction the response's InResponseTo took out of the store (single use), once taken. */
  taken?: { id: string; tx: LoginTransaction | null };
  /** The browser's login-binding cookie, at the ACS. */
  binding?: string | undefined;
}

/** What a verified ACS post becomes: a sign-in (passport's user), or a test login's sealed report. */
export type SamlOutcome = LoginResult | TestLoginDone;

const txKey = (requestId: string) => hashTransactionSecret(`saml:${requestId}`);

/** The longest a replay marker is kept, whatever an assertion's NotOnOrAfter says. */
const REPLAY_MARKER_MAX_MS = 24 * 3600_000;

/** node-saml's error (its messages are its API) as a login problem the page and the audit can name. */
function loginProblem(err: unknown): OidcLoginError {
  if (err instanceof OidcLoginError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const said = (text: string) => `${text} (${idpText(message, 200)})`;
  if (err instanceof SamlStatusError) return new OidcLoginError('saml_status_error', said('the identity provider refused the sign-in'), {}, err);
  if (/InResponseTo is missing/i.test(message)) return new OidcLoginError('saml_idp_initiated_refused', 'this SAML response answers no sign-in started here (IdP-initiated), and the connection does not allow IdP-initiated sign-in; start from trackgate\'s sign-in page', {}, err);
  if (/InResponseTo/i.test(message)) return new OidcLoginError('saml_in_response_to_unknown', 'this SAML response answers no pending sign-in (it was already used, has expired, or was never asked for); start again', {}, err);
  if (/signature/i.test(message)) return new OidcLoginError('saml_signature_invalid', said("the SAML response is not signed as the connection requires, or not by one of the IdP's certificates"), {}, err);
  if (/expired|not yet valid|subject confirmation/i.test(message)) return new OidcLoginError('saml_expired', said('the SAML assertion is expired or not yet valid; check the clocks of the IdP and trackgate'), {}, err);
  if (/audience/i.test(message)) return new OidcLoginError('saml_audience_mismatch', said("the SAML assertion is for another service provider: register the connection's SP entity ID as the audience in the IdP"), {}, err);
  return new OidcLoginError('saml_response_invalid', said('the SAML response could not be verified'), {}, err);
}

type XmlNode = { $?: Record<string, string>; _?: string } & Record<string, unknown>;
const children = (node: unknown, name: string): XmlNode[] => {
  const v = (node as Record<string, unknown> | undefined)?.[name];
  return Array.isArray(v) ? (v as XmlNode[]) : [];
};

/**
 * SAML 2.0 sign-in: a passport-saml strategy per connection (made by ConnectionStrategies), pending logins in
 * the shared transaction store through node-saml's cacheProvider (never its per-process memory: a response may
 * come back to another instance), and the checks node-saml leaves to its caller (Issuer, Recipient, replay,
 * comments, the browser binding), then the same account rules as OIDC.
 */
export class SamlLogins {
  private readonly als = new AsyncLocalStorage<RequestContext>();

  constructor(
    private readonly o: {
      sso: SsoService;
      login: SsoLoginService;
      strategies: ConnectionStrategies;
      transactions: TransactionStore;
      logger: Logger;
      transactionTtlSeconds: number;
      clockToleranceSeconds: number;
    },
  ) {
    // passport-saml is typed against its own copy of @types/express (v4): the same objects at run time.
    o.strategies.registerKind<SsoStrategyConnection>('saml', (sc) => this.makeStrategy(sc.connection) as unknown as PassportStrategy);
  }

  /** The passport strategy name of a SAML connection (its strategy made or remade if its settings changed). */
  strategyName(c: Connection): string {
    return this.o.strategies.use(strategyConnection(c));
  }

  /** The connection's strategy, as ConnectionStrategies holds it (made by makeStrategy). */
  private strategyOf(c: Connection): SamlStrategy {
    const strategy: unknown = this.o.strategies.strategy(strategyConnection(c));
    if (!(strategy instanceof SamlStrategy)) throw new Error(`connection ${c.row.id} has no SAML strategy`);
    return strategy;
  }

  private cacheProvider(connectionId: string): CacheProvider {
    const transactions = this.o.transactions;
    const ttl = this.o.transactionTtlSeconds;
    const context = () => this.als.getStore() ?? {};
    return {
      // A new AuthnRequest: its ID is the transaction's key, with the browser binding and where to return.
      async saveAsync(key, value) {
        const start = context().start;
        if (!start) throw new Error('a SAML request was generated outside a sign-in start');
        const now = Date.now();
        await transactions.put(
          {
            state_hash: txKey(key),
            org_id: start.orgId,
            connection_id: start.connectionId,
            nonce: value,
            code_verifier_sealed: null,
            return_to: start.returnTo,
            binding_hash: hashTransactionSecret(start.binding),
            created_at: new Date(now).toISOString(),
            expires_at: new Date(now + ttl * 1000).toISOString(),
            test_of: start.testOf,
          },
          ttl,
        );
        return { value, createdAt: now };
      },
      // An InResponseTo: the transaction is taken out at once (single use across instances); node-saml may ask
      // again within the same response (the SubjectConfirmationData's InResponseTo), which the request remembers.
      async getAsync(key) {
        const ctx = context();
        if (ctx.taken?.id === key) return ctx.taken.tx?.nonce ?? null;
        if (ctx.taken) return null;
        const tx = await transactions.take(txKey(key));
        const mine = tx && tx.connection_id === connectionId ? tx : null;
        ctx.taken = { id: key, tx: mine };
        return mine?.nonce ?? null;
      },
      removeAsync(key) {
        return Promise.resolve(key);
      },
    };
  }

  private makeStrategy(c: Connection): SamlStrategy {
    const s = c.saml;
    if (!s) throw new Error(`connection ${c.row.id} is not a SAML connection`);
    const sp = this.o.sso.samlEndpoints(c.row.id);
    const strategy = new SamlStrategy(
      {
        name: `sso:${c.row.id}`,
        callbackUrl: sp.acsUrl,
        entryPoint: s.sso_url,
        issuer: sp.spEntityId,
        audience: sp.spEntityId,
        idpIssuer: s.entity_id,
        idpCert: s.certificates,
        wantAssertionsSigned: s.want_assertions_signed,
        wantAuthnResponseSigned: s.want_response_signed,
        // Every response must answer a request of ours, unless the connection allows IdP-initiated sign-in.
        validateInResponseTo: s.allow_idp_initiated ? ValidateInResponseTo.ifPresent : ValidateInResponseTo.always,
        requestIdExpirationPeriodMs: this.o.transactionTtlSeconds * 1000,
        cacheProvider: this.cacheProvider(c.row.id),
        acceptedClockSkewMs: this.o.clockToleranceSeconds * 1000,
        // No NameIDPolicy and no RequestedAuthnContext: the IdP sends the NameID it is configured for, and any
        // authentication it does (MFA, Windows integrated) satisfies us; asking for "password" breaks those.
        identifierFormat: null,
        disableRequestedAuthnContext: true,
        passReqToCallback: true,
      },
      ((req, profile, done) => {
        this.verify(req, c, profile).then(
          (outcome) => done(null, outcome as unknown as Record<string, unknown>),
          (err: unknown) => done(loginProblem(err)),
        );
      }) satisfies VerifyWithRequest,
      ((_req, _profile, done) => done(new OidcLoginError('saml_response_invalid', 'SAML single logout is not supported'))) satisfies VerifyWithRequest,
    );
    return strategy;
  }

  /** Forgets a deleted connection's strategy. */
  drop(connectionId: string): void {
    this.o.strategies.drop(connectionId);
  }

  /** The URL of the AuthnRequest (HTTP-Redirect binding) for a new sign-in; its transaction is stored on the way. */
  async startUrl(c: Connection, returnTo: string, binding: string, testOf: string | null = null): Promise<string> {
    const strategy = this.strategyOf(c);
    const connectionSaml = strategy._saml;
    if (!connectionSaml) throw new Error('the SAML strategy has no SAML provider');
    // A test login asks the IdP to authenticate afresh (ForceAuthn), as OIDC's sends prompt=login: an IdP that
    // remembers the admin would sign the admin in again. node-saml sets ForceAuthn per provider, so a test gets
    // its own, with the same settings and transaction store: the connection's strategy verifies the answer.
    const saml = testOf ? new SAML({ ...connectionSaml.options, forceAuthn: true }) : connectionSaml;
    return this.als.run({ start: { orgId: c.row.org_id, connectionId: c.row.id, returnTo, binding, testOf } }, () => saml.getAuthorizeUrlAsync('', undefined, {}));
  }

  /**
   * A SAML test login (the admin's "Test login"): a transaction marked with the hash of the admin's session, as
   * OIDC's (SsoLoginService.startTest); its response runs every check, then reports instead of signing in.
   */
  startTestUrl(c: Connection, sessionId: string, binding: string): Promise<string> {
    return this.startUrl(c, '/admin', binding, hashTransactionSecret(sessionId));
  }

  /** Our SP metadata for a connection (what the IdP is configured from). */
  spMetadata(c: Connection): string {
    return this.strategyOf(c).generateServiceProviderMetadata(null, null);
  }

  /**
   * What node-saml refused a response with (passed on by passport-saml as a plain Error): named as a login
   * problem, and audited as a failed sign-in of the connection's organization.
   */
  async refused(c: Connection, err: unknown, ctx: LoginContext): Promise<OidcLoginError> {
    const problem = loginProblem(err);
    await this.o.login.loginFailed(c, problem, ctx);
    return problem;
  }

  /** Runs the ACS's passport.authenticate inside this request's context (the cacheProvider reads it). */
  runAcs<T>(binding: string | undefined, fn: () => T): T {
    return this.als.run({ binding }, fn);
  }

  /** What node-saml verified, checked further and turned into a sign-in (or a test login's report). */
  private async verify(req: { res?: { locals: Record<string, unknown> } | undefined }, c: Connection, profile: Profile | null): Promise<SamlOutcome> {
    const text = (x: unknown) => (typeof x === 'string' ? x : '');
    const ctx: LoginContext = { ip: text(req.res?.locals.clientIp), requestId: text(req.res?.locals.requestId) };
    const s = c.saml;
    if (!profile || !s) throw new OidcLoginError('saml_response_invalid', 'the SAML response holds no assertion');
    const store = this.als.getStore() ?? {};
    const tx = store.taken?.tx ?? null;
    try {
      // node-saml checks the Issuer of logout messages only: an assertion must come from the connection's IdP.
      // Typed as a string, absent when the assertion has no Issuer.
      const issuer: unknown = profile.issuer;
      if (issuer !== s.entity_id) throw new OidcLoginError('saml_issuer_mismatch', `the SAML assertion was issued by "${idpText(text(issuer), 200)}", not the connection's IdP (${s.entity_id})`);
      // Canonicalization drops comments, so a signature over "user@corp.com.evil.com" still verifies once
      // "<!---->" is slipped inside it, and XML readers differ on which text they then return. Real IdPs put no
      // comments in responses: one is refused outright, whatever it splits.
      // The signed assertion node-saml hands back is canonical (comments gone): the response as posted is looked at.
      const postedXml = profile.getSamlResponseXml?.() ?? '';
      if (postedXml.includes('<!--')) throw new OidcLoginError('saml_comment_in_assertion', 'the SAML assertion holds an XML comment, which its signature does not cover; it is refused');
      // No IdP sends a DTD; one can declare entities or ID attributes the signature check and the reader see differently.
      if (/<!DOCTYPE|<!ENTITY/i.test(postedXml)) throw new OidcLoginError('saml_doctype', 'the SAML response declares a DOCTYPE or entities, which SAML responses never need; it is refused');
      const assertion = (profile.getAssertion?.() as { Assertion?: XmlNode } | undefined)?.Assertion;
      const confirmations = children(children(assertion, 'Subject')[0], 'SubjectConfirmation').flatMap((sc) => children(sc, 'SubjectConfirmationData'));
      // node-saml does not check the Recipient: an assertion the IdP issued for another SP's ACS (ours shares
      // its IdP and audience only by misconfiguration, but then) must not sign in here.
      if (confirmations.length === 0 || confirmations.some((d) => d.$?.Recipient !== this.o.sso.samlEndpoints(c.row.id).acsUrl)) {
        throw new OidcLoginError('saml_recipient_mismatch', `the SAML assertion was issued for another ACS URL (Recipient "${idpText(confirmations[0]?.$?.Recipient ?? 'none', 200)}"); register ${this.o.sso.samlEndpoints(c.row.id).acsUrl} in the IdP`);
      }
      // Which request the response answers is said twice: by the Response (signed only when the whole response
      // is) and by each SubjectConfirmationData (inside the signed assertion). node-saml compares them only when
      // both are there, so an unsolicited assertion (none inside) wrapped in a Response naming the attacker's own
      // request passed as an answer to it, and an answer to another browser's request with the Response's
      // attribute stripped passed as IdP-initiated (no binding). Both must name the same request, or neither.
      const answers = confirmations.map((d) => d.$?.InResponseTo ?? null);
      if (answers.some((a) => a !== (profile.inResponseTo ?? null))) {
        throw new OidcLoginError('saml_in_response_to_mismatch', 'the SAML assertion answers another sign-in than its response says (InResponseTo differs); start again');
      }
      if (profile.inResponseTo) {
        if (!tx) throw new OidcLoginError('saml_in_response_to_unknown', 'this SAML response answers no pending sign-in; start again');
        if (Date.parse(tx.expires_at) <= Date.now()) throw new OidcLoginError('transaction_expired', 'the sign-in took too long and expired; start again');
        if (!store.binding || hashTransactionSecret(store.binding) !== tx.binding_hash) {
          throw new OidcLoginError('binding_mismatch', 'this sign-in was started in another browser (or its cookies were blocked); start again in this browser');
        }
      } else if (!s.allow_idp_initiated) {
        throw new OidcLoginError('saml_idp_initiated_refused', 'this SAML response answers no sign-in started here (IdP-initiated), and the connection does not allow IdP-initiated sign-in');
      }
      if (!profile.nameID) throw new OidcLoginError('saml_nameid_missing', 'the SAML assertion has no NameID');
      // Each assertion signs in once, on any instance, until it expires.
      const assertionId = assertion?.$?.ID;
      if (!assertionId) throw new OidcLoginError('saml_response_invalid', 'the SAML assertion has no ID');
      const ends = [children(assertion, 'Conditions')[0]?.$?.NotOnOrAfter, ...confirmations.map((d) => d.$?.NotOnOrAfter)].map((t) => (t ? Date.parse(t) : NaN)).filter((t) => Number.isFinite(t));
      const until = Math.min(Math.max(Date.now(), ...ends) + this.o.clockToleranceSeconds * 1000, Date.now() + REPLAY_MARKER_MAX_MS);
      if (!(await this.o.transactions.claimOnce(`saml-assertion:${s.entity_id}|${assertionId}`, new Date(until)))) {
        throw new OidcLoginError('saml_assertion_replayed', 'this SAML assertion was already used to sign in; start again');
      }
      const current = await this.o.sso.connectionById(c.row.org_id, c.row.id);
      if (!current || (current.row.enabled !== 1 && !tx?.test_of)) throw new OidcLoginError('connection_disabled', 'the SSO connection of this sign-in was disabled or deleted');
    } catch (err) {
      // A failed test is the admin's to read, not a sign-in failure of the organization (as OIDC's).
      if (!tx?.test_of) await this.o.login.loginFailed(c, loginProblem(err), ctx);
      throw err;
    }
    // The account rules audit their own refusals (completeVerified, as OIDC's complete): outside the catch above,
    // so that each failed sign-in is recorded once.
    return this.o.login.completeVerified(c, this.identity(c, profile), { testOf: tx?.test_of ?? null, returnTo: tx?.return_to ?? '/settings' }, ctx);
  }

  /** A verified assertion as an identity: issuer (IdP entity ID) + NameID, and the mapped attributes. */
  private identity(c: Connection, profile: Profile): VerifiedIdentity {
    const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
    const attr = (name: string) => attributes[name];
    // Typed as a string, absent when the NameID has no Format.
    const format: unknown = profile.nameIDFormat;
    const nameIdFormat = typeof format === 'string' ? format : null;
    const emailRaw = attr(c.claims.email) ?? (nameIdFormat?.endsWith(':emailAddress') ? profile.nameID : undefined);
    const email = SsoLoginService.mappedEmail(emailRaw);
    const groupsRaw = attr(c.claims.groups);
    const issuer = c.saml?.entity_id ?? profile.issuer;
    return {
      protocol: 'saml',
      issuer,
      subject: profile.nameID,
      id: { key: `saml|${issuer}|${profile.nameID}`, tenantId: null, objectId: null },
      claims: { name_id: profile.nameID, name_id_format: nameIdFormat, ...attributes },
      email,
      // See EmailEvidence: the IdP's signature over the address, for a connection that trusts one IdP entity;
      // decideEmailLink still demands the address's domain be one of this connection's.
      evidence: email ? 'saml_signed_assertion' : null,
      groups: { name: c.claims.groups, present: groupsRaw !== undefined, overage: false, values: stringValues(groupsRaw) },
      username: singleString(attr(c.claims.username)),
      name: singleString(attr(c.claims.name)),
    };
  }
}
