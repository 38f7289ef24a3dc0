import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Store } from '../db/store.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { CREDENTIAL_PREFIXES, generateSecretToken } from '../keys/key-format.ts';
import type { KeysRepository } from '../keys/keys.repository.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import { ASYMMETRIC_ALGORITHMS } from '../sso/oidc/discovery.ts';
import { IdpFetchError } from '../sso/oidc/idp-fetch.ts';
import type { AccessTokensRepository } from './access-tokens.repository.ts';
import type { FederatedCredentialRow, FederatedCredentialsRepository } from './federated-credentials.repository.ts';
import type { FederationReplaysRepository } from './replays.repository.ts';
import { ruleMatches } from './trust-rules.ts';
import type { TrustRule } from './trust-rules.ts';
import { WorkloadIssuerError } from './workload-issuers.ts';
import type { WorkloadIssuers } from './workload-issuers.ts';

/**
 * The service account a rule names, read by shape: src/service-accounts sits above this folder
 * (it revokes access tokens when an account is deleted), so its repository is not imported here.
 */
interface TokenServiceAccounts {
  findById(orgId: string, id: string): Promise<{ id: string; username: string; name: string; team_name: string } | undefined>;
}

/** What an exchange touches, in one transaction with its audit event. */
export interface TokenExchangeRepos {
  federatedCredentials: FederatedCredentialsRepository;
  accessTokens: AccessTokensRepository;
  federationReplays: FederationReplaysRepository;
  serviceAccounts: TokenServiceAccounts;
  orgs: OrgsRepository;
  /** For lockOwner: the service account's row lock, which the deletions of a rule or of the account take too. */
  keys: Pick<KeysRepository, 'lockOwner'>;
  audit: AuditRepository;
}

export interface TokenExchangeOptions {
  /** federationAccessTokenTtlSeconds: an access token's life, exactly (never longer). */
  accessTokenTtlSeconds: number;
  /** federationMaxAssertionLifetimeSeconds: exp − (iat ?? now) at most. */
  maxAssertionLifetimeSeconds: number;
  /** federationClockToleranceSeconds: for exp, nbf and iat. */
  clockToleranceSeconds: number;
}

/** Who asked, for the audit and the failure count (no HTTP here: the route reads them). */
export interface ExchangeClient {
  ip: string;
  requestId: string;
}

export interface IssuedAccessToken {
  accessToken: string;
  expiresIn: number;
}

/**
 * The one answer to every refused assertion (RFC 6749 invalid_grant). Which check failed would tell an
 * attacker how to shape the next assertion, so it goes to the log, and to the audit of the organization the
 * token names (see refused), never to the client.
 */
const REFUSED_MESSAGE = 'the assertion was refused: it is not a valid workload token that a federation rule of this gateway trusts';

/** Rules considered for one issuer at most: a rule is per service account (10 at most each), so this is many organizations' worth. */
const MAX_CANDIDATES = 200;
/** Audiences of a refused token looked up as organizations at most (the audit of a refusal). */
const MAX_AUDIENCES = 5;
/** Audiences of a token for which rules are looked up (a Kubernetes token carries one or two). */
const MAX_MATCHED_AUDIENCES = 10;
/** How long a claim's value may be where the log or the audit repeats it. */
const MAX_LOGGED = 200;

/** Refusals that come after the signature verified: the claims quoted with them are the issuer's, not anyone's. */
const AFTER_SIGNATURE = new Set(['iat_future', 'lifetime_too_long', 'claim_sub', 'claim_jti', 'no_matching_rule', 'ambiguous', 'account_gone', 'not_enterprise', 'rule_deleted', 'replayed']);

/** Why an assertion was refused: for the log and the audit only. */
class Refusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** The rules already loaded for the token's issuer, when they were. */
    readonly candidates?: readonly FederatedCredentialRow[],
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

/** A rule's issuer and audience at most (createFederatedCredentialBody). */
const MAX_ISSUER = 512;
const MAX_AUDIENCE = 256;
/** A workload token's sub and jti at most (GitHub's longest subjects are a few hundred characters). */
const MAX_SUBJECT = 1024;
const MAX_JTI = 512;
// eslint-disable-next-line no-control-regex -- the NUL is the point
const storable = (s: string, max: number): boolean => s.length <= max && !/\u0000/.test(s);

const cut = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, MAX_LOGGED) : null);

function ruleOf(row: FederatedCredentialRow): TrustRule {
  let conditions: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(row.conditions);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) conditions = parsed as Record<string, string>;
  } catch {
    // Written by the rules service as JSON; a row that is not cannot match anything but the bare rule,
    // so it matches nothing: a condition that cannot be read must not become no condition.
    conditions = { '': '\u0000' };
  }
  return { issuer: row.issuer, audience: row.audience, subject: row.subject, conditions };
}

function audiencesOf(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** A JWKS that could not be had (fetch failed, not a key set, not 200): the issuer's trouble, answered 503. */
function keysUnavailable(err: unknown): boolean {
  if (err instanceof IdpFetchError) return err.problem === 'unreachable' || err.problem === 'timeout';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  // jose's non-200 answer from the jwks_uri is a bare JOSEError.
  return err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(err.message);
}

/** jose's verdict in the log's words. */
function verificationRefusal(err: unknown, candidates: readonly FederatedCredentialRow[]): Refusal {
  if (err instanceof IdpFetchError) return new Refusal('jwks_invalid', err.message, candidates);
  if (err instanceof joseErrors.JWTExpired) return new Refusal('expired', `the token expired (${err.reason})`, candidates);
  if (err instanceof joseErrors.JWTClaimValidationFailed) return new Refusal(`claim_${err.claim}`, `the token's "${err.claim}" claim is invalid (${err.reason})`, candidates);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new Refusal('signature', "the signature does not verify with the issuer's keys", candidates);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new Refusal('unknown_key', 'signed with a key the issuer does not publish', candidates);
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return new Refusal('kid_missing', 'no kid, and the issuer publishes several keys', candidates);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new Refusal('alg_not_allowed', 'an algorithm that is not a public-key one', candidates);
  if (err instanceof joseErrors.JOSEError) return new Refusal('invalid', `the token is invalid (${err.code})`, candidates);
  throw err;
}

/**
 * Workload identity federation's token exchange (RFC 7523 jwt-bearer, behind POST /oidc/token): a workload
 * token a trust rule accepts becomes a short-lived opaque access token of the rule's service account.
 * The checks run in the order design-17 fixes: the cheap ones and "does anybody trust this issuer" before any
 * fetch, so that the endpoint cannot be used to make trackgate fetch arbitrary URLs.
 */
export class TokenExchangeService {
  constructor(
    private readonly store: Store<TokenExchangeRepos>,
    private readonly issuers: WorkloadIssuers,
    private readonly audit: AuditService,
    private readonly logger: Logger,
    /** Refused exchanges per client address (rate-limiter-flexible; in Redis when configured). */
    private readonly failures: RateLimiterAbstract,
    private readonly options: TokenExchangeOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Exchanges a workload token; throws AppError: oauth_invalid_grant (refused), rate_limited, unavailable. */
  async exchange(assertion: string, client: ExchangeClient): Promise<IssuedAccessToken> {
    await this.checkNotBlocked(client.ip);
    try {
      return await this.checked(assertion, client);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      await this.refused(err, assertion, client);
      throw new AppError('oauth_invalid_grant', REFUSED_MESSAGE);
    }
  }

  /** An address whose refusals reached the limit waits (429): each refusal may have cost a fetch and a verification. */
  private async checkNotBlocked(ip: string): Promise<void> {
    let res: RateLimiterRes | null;
    try {
      res = await this.failures.get(ip);
    } catch (err) {
      // The limiter's store down must not turn an exchange into a 500; the insurance limiter counts meanwhile.
      this.logger.warn({ err: (err as Error).message }, 'federation: the failure limiter could not be read');
      return;
    }
    if (res && res.consumedPoints >= this.failures.points) {
      throw errors.tooManyRequests('too many refused token exchanges from this address; wait and try again', Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
    }
  }

  private async checked(assertion: string, client: ExchangeClient): Promise<IssuedAccessToken> {
    // 1. The header: a public-key algorithm, never none nor HS* (whose "secret" could be the public key).
    let alg: unknown;
    let unverified: JWTPayload;
    try {
      alg = decodeProtectedHeader(assertion).alg;
      unverified = decodeJwt(assertion);
    } catch {
      throw new Refusal('malformed', 'not a JWT');
    }
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg)) throw new Refusal('alg_not_allowed', `alg ${JSON.stringify(cut(alg))} is not a public-key algorithm`);

    // 2. An issuer some rule trusts, before anything is fetched: nobody can make trackgate fetch an arbitrary URL.
    const iss = unverified.iss;
    if (typeof iss !== 'string' || iss === '') throw new Refusal('no_issuer', 'no iss');
    // Not yet verified: what no rule can hold (a NUL, which PostgreSQL's text refuses with an error; more than
    // a rule's fields take) is refused here rather than sent to the database.
    if (!storable(iss, MAX_ISSUER)) throw new Refusal('issuer_not_trusted', 'an iss no rule can hold');
    const audiences = audiencesOf(unverified.aud).filter((a) => storable(a, MAX_AUDIENCE)).slice(0, MAX_MATCHED_AUDIENCES);
    const candidates = await this.store.repos.federatedCredentials.findByIssuer(iss, audiences, MAX_CANDIDATES);
    if (candidates.length === 0) throw new Refusal('issuer_not_trusted', "no federation rule trusts this issuer for the token's audience", candidates);

    // 3. Its keys (discovery, then the JWKS), and 4. the signature and times.
    let getKey;
    try {
      getKey = await this.issuers.keysFor(iss);
    } catch (err) {
      if (!(err instanceof WorkloadIssuerError)) throw err;
      if (err.problem === 'unavailable') throw issuerUnavailable(err);
      throw new Refusal('issuer_invalid', err.message, candidates);
    }
    const tolerance = this.options.clockToleranceSeconds;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(assertion, getKey, {
        algorithms: ASYMMETRIC_ALGORITHMS,
        issuer: iss,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'sub', 'aud', 'iss'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (keysUnavailable(err)) throw issuerUnavailable(err);
      throw verificationRefusal(err, candidates);
    }
    const nowSeconds = Math.floor(this.now() / 1000);
    const { exp, sub } = claims;
    // Required by jwtVerify (requiredClaims); said again for the types.
    if (exp === undefined || typeof sub !== 'string' || sub === '') throw new Refusal('claim_sub', 'sub is not a string', candidates);
    // Stored with the token (access_tokens.subject, the replay record): a NUL (PostgreSQL's text refuses it: a 500)
    // or an unbounded length is refused here, even signed by a trusted issuer.
    if (!storable(sub, MAX_SUBJECT)) throw new Refusal('claim_sub', 'a sub no token can hold', candidates);
    if (typeof claims.jti === 'string' && !storable(claims.jti, MAX_JTI)) throw new Refusal('claim_jti', 'a jti no replay record can hold', candidates);
    if (claims.iat !== undefined && claims.iat > nowSeconds + tolerance) throw new Refusal('iat_future', 'issued in the future', candidates);
    const lifetime = exp - (claims.iat ?? nowSeconds);
    if (lifetime > this.options.maxAssertionLifetimeSeconds) {
      throw new Refusal('lifetime_too_long', `a lifetime of ${lifetime} s, more than the ${this.options.maxAssertionLifetimeSeconds} s allowed`, candidates);
    }

    // 5. The rules it satisfies: of one service account only.
    const matching = await this.withoutImpostors(candidates.filter((row) => ruleMatches(ruleOf(row), claims)));
    if (matching.length === 0) throw new Refusal('no_matching_rule', 'no federation rule matches its audience, subject and conditions', candidates);
    const accounts = new Set(matching.map((r) => r.service_account_id));
    if (accounts.size > 1) throw new Refusal('ambiguous', `rules of ${accounts.size} service accounts match it`, candidates);
    const [rule] = matching;
    if (!rule) throw new Refusal('no_matching_rule', 'no federation rule matches', candidates);
    const repos = this.store.repos;
    const [sa, org] = await Promise.all([repos.serviceAccounts.findById(rule.org_id, rule.service_account_id), repos.orgs.findById(rule.org_id)]);
    if (!sa || !org) throw new Refusal('account_gone', 'the service account of the matching rule no longer exists', candidates);
    if (org.plan !== 'enterprise') throw new Refusal('not_enterprise', `organization "${org.slug}" is not on the enterprise plan`, candidates);

    // 6. One transaction: the assertion used once, the token, the audit.
    const token = generateSecretToken(CREDENTIAL_PREFIXES.access_token);
    const ttl = this.options.accessTokenTtlSeconds;
    const now = new Date(this.now());
    const expiresAt = new Date(now.getTime() + ttl * 1000).toISOString();
    const jti = typeof claims.jti === 'string' && claims.jti !== '' ? claims.jti : null;
    await this.store.transaction(async (tx) => {
      // The rule was read before this transaction: it may have been deleted since, and that deletion revoked
      // the rule's tokens without this one. Under the account's row lock (taken by a rule's and an account's
      // deletion too), the rule is read again: a deletion that came first has committed (refused here), one
      // that comes later waits for this commit and then revokes this token with the rule's others.
      await tx.keys.lockOwner({ ownerType: 'service_account', ownerId: sa.id });
      const current = await tx.federatedCredentials.findById(org.id, rule.id);
      if (!current || current.service_account_id !== sa.id) throw new Refusal('rule_deleted', 'the matching rule (or its service account) was deleted during the exchange', candidates);
      // Without a jti, the assertion itself is its id: its signed part (header and payload), not its whole text,
      // since the signature's encoding is not unique (base64url's spare bits, padding; ECDSA's (r, n − s)) and a
      // re-encoded copy would otherwise pass as a new assertion. The signature binds these bytes exactly.
      const signed = assertion.slice(0, assertion.lastIndexOf('.'));
      const replayId = jti ?? `sha256:${createHash('sha256').update(signed).digest('hex')}`;
      const first = await tx.federationReplays.remember(iss, replayId, new Date((exp + tolerance) * 1000).toISOString(), now.toISOString());
      if (!first) throw new Refusal('replayed', `this assertion (jti ${JSON.stringify(cut(replayId))}) was already exchanged`, candidates);
      const id = randomUUID();
      await tx.accessTokens.insert({
        id,
        org_id: org.id,
        service_account_id: sa.id,
        credential_id: rule.id,
        token_id: token.keyId,
        token_hash: token.hash,
        issuer: iss,
        subject: sub,
        jti,
        created_at: now.toISOString(),
        expires_at: expiresAt,
        revoked_at: null,
      });
      await this.audit.record(tx, { type: 'service_account', id: sa.id, name: sa.username, ip: client.ip, requestId: client.requestId }, {
        orgId: org.id,
        action: 'access_token.issue',
        targetType: 'service_account',
        targetId: sa.id,
        targetName: sa.username,
        details: { issuer: iss, subject: cut(sub), credential: rule.id, credential_name: rule.name, token_id: token.keyId, expires_at: expiresAt },
      });
    });
    this.logger.info({ issuer: iss, subject: cut(sub), org: org.slug, service_account: sa.username, credential: rule.id, token_id: token.keyId }, 'federation: access token issued');
    return { accessToken: token.key, expiresIn: ttl };
  }

  /**
   * An audience that is an organization's slug names that organization (it is the default audience of its
   * rules): a rule of another organization that claims it is an impostor's, which must neither take that
   * organization's workload tokens nor make them ambiguous (a denial of service on a shared issuer).
   */
  private async withoutImpostors(matching: FederatedCredentialRow[]): Promise<FederatedCredentialRow[]> {
    if (matching.length === 0) return matching;
    const owners = new Map<string, string | null>();
    for (const audience of new Set(matching.map((r) => r.audience))) owners.set(audience, (await this.store.repos.orgs.findBySlug(audience))?.id ?? null);
    return matching.filter((r) => {
      const owner = owners.get(r.audience) ?? null;
      return owner === null || owner === r.org_id;
    });
  }

  /**
   * A refusal: counted against the address, logged with its reason, and audited in the organization the
   * token names as its audience when that organization has a rule for the issuer (its admins see attempts on
   * their rules; a token naming nobody's organization, or one without a rule there, writes to no one's log).
   * The claims quoted are as presented: not verified when the refusal came before the signature.
   */
  private async refused(refusal: Refusal, assertion: string, client: ExchangeClient): Promise<void> {
    await this.failures.consume(client.ip).catch((res: unknown) => {
      if (!(res instanceof RateLimiterRes)) this.logger.warn({ err: (res as Error).message }, 'federation: the failure limiter could not count a refusal');
    });
    let claims: JWTPayload = {};
    try {
      claims = decodeJwt(assertion);
    } catch {
      // Not a JWT: nothing names an issuer or an organization.
    }
    const iss = cut(claims.iss);
    const sub = cut(claims.sub);
    const audiences = audiencesOf(claims.aud).filter((a) => storable(a, MAX_AUDIENCE)).slice(0, MAX_AUDIENCES);
    this.logger.info({ reason: refusal.reason, detail: refusal.message, issuer: iss, subject: sub, audience: audiences.map((a) => a.slice(0, MAX_LOGGED)), ip: client.ip, request_id: client.requestId }, 'federation: token exchange refused');
    if (!iss || !storable(iss, MAX_ISSUER) || audiences.length === 0) return;
    try {
      const repos = this.store.repos;
      const candidates = refusal.candidates ?? [];
      for (const slug of new Set(audiences)) {
        const org = await repos.orgs.findBySlug(slug);
        if (!org || !(candidates.some((c) => c.org_id === org.id) || (await repos.federatedCredentials.orgTrustsIssuer(org.id, iss)))) continue;
        await this.store.transaction((tx) =>
          this.audit.record(tx, { type: 'workload', id: null, name: sub, ip: client.ip, requestId: client.requestId }, {
            orgId: org.id,
            action: 'access_token.refused',
            targetType: 'issuer',
            targetId: null,
            targetName: iss,
            details: { reason: refusal.reason, detail: refusal.message.slice(0, 500), issuer: iss, subject: sub, verified: AFTER_SIGNATURE.has(refusal.reason) },
          }),
        );
      }
    } catch (err) {
      // The refusal stands whether or not its audit could be written (the database may be what failed).
      this.logger.warn({ err: (err as Error).message, reason: refusal.reason }, 'federation: a refused exchange could not be audited');
    }
  }
}

/** The issuer or its keys could not be had: a down IdP is not the client's fault (503, try again). */
function issuerUnavailable(err: unknown): AppError {
  return new AppError('unavailable', "the workload token's issuer is unavailable (its discovery document or signing keys could not be fetched): try again shortly", {
    retryAfterSeconds: 10,
    cause: err,
  });
}
