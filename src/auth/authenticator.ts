import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { errors } from '../errors/app-error.ts';
import type { AppError } from '../errors/app-error.ts';
import type { Principal } from './principal.ts';
import { hashSecret } from '../crypto/tokens.ts';
import { isAccessToken, readCredentials } from './credentials.ts';

export type AuthOutcome =
  | { ok: true; principal: Principal }
  /** No credentials at all: the caller decides whether anonymous is fine. */
  | { ok: false; anonymous: true }
  | { ok: false; anonymous: false; error: AppError };

/** An API key's verdict, as the Authenticator reads it (src/keys' KeyVerification is one). */
export type KeyVerification = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * What the Authenticator needs of API-key verification: src/keys/key-verifier.ts's KeyVerifier. Declared
 * here by shape, because keys build on this folder (Principal, invalidation) and not the reverse.
 */
export interface ApiKeyVerifier {
  verifyCached(key: string, creds?: { hash?: string }): KeyVerification | undefined;
  verify(key: string, creds?: { hash?: string }): Promise<KeyVerification>;
}

/** Reads a browser session from the request's cookies; null when there is none. */
export type SessionAuthenticator = (req: IncomingMessage) => Promise<Principal | null>;

/**
 * Under the policy "require SSO", a person's API key is for tools (the
 * tracking client, scripts), not for a browser: a browser request carrying it
 * (it asks for HTML, or sends the Sec-Fetch-Dest header every browser sends) is
 * refused. The instance operator keeps the way in, to repair SSO. Broader
 * than src/http/browser.ts's asksForHtml (which decides redirect or 401): a
 * page's fetch() asks for no HTML but is still a browser's request.
 */
function ssoOnlyRefusal(req: IncomingMessage, principal: Principal): boolean {
  if (principal.type !== 'user' || principal.instanceAdmin) return false;
  // Sec-Fetch-Dest, not Sec-Fetch-Mode: Node's own fetch sends the latter too.
  if (req.headers['sec-fetch-dest'] !== undefined) return true;
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

const ANONYMOUS: AuthOutcome = Object.freeze({ ok: false, anonymous: true });

const REASONS: Record<string, string> = {
  malformed: 'invalid API key: it is not a trackgate key (wrong length, alphabet or checksum)',
  unknown: 'invalid API key: no such key',
  expired: 'API key expired: create a new key',
  revoked: 'API key revoked: create a new key',
  owner_inactive: 'API key of a deactivated account: an organization admin can reactivate it',
};

/** The same verdicts for a federation access token (`tga-…`, src/federation): it is not an API key, and is renewed by exchanging a workload token again. */
const ACCESS_TOKEN_REASONS: Record<string, string> = {
  malformed: 'invalid access token: it is not one trackgate issued (wrong length, alphabet or checksum)',
  unknown: 'invalid access token: no such token',
  expired: 'access token expired: exchange a new workload token at /oidc/token',
  revoked: 'access token revoked: its service account or federation rule was deleted, or it leaked',
  owner_inactive: 'invalid access token: no such token',
};

/** The error of a refused API key or access token. */
function keyRefusal(key: string, reason: string): AppError {
  if (isAccessToken(key)) {
    return errors.unauthenticated(ACCESS_TOKEN_REASONS[reason] ?? 'invalid access token', reason === 'expired' ? 'access_token_expired' : reason === 'revoked' ? 'access_token_revoked' : 'invalid_token');
  }
  return errors.unauthenticated(REASONS[reason] ?? 'invalid API key', reason === 'expired' || reason === 'revoked' ? `key_${reason}` : reason === 'owner_inactive' ? 'account_deactivated' : 'invalid_key');
}

/** How many "seen" pairs (address, failing credential) are remembered; past that the oldest may count again. */
const COUNTED_MAX = 20_000;
/** How many blocked addresses are remembered locally; one forgotten is blocked again by its next failure. */
const BLOCKED_MAX = 20_000;

/**
 * Turns a request into a Principal. Used by the lean hot path (forward auth,
 * proxy) and by the management API alike, so the rules are the same
 * everywhere: malformed credentials and bad keys are 401 with
 * WWW-Authenticate, and an address that tries too many bad credentials loses
 * for a while the right to have unknown ones looked up.
 *
 * The failure limit is against guessing and against making the database do
 * the guessing's work, not against clients with a good key: many people share
 * one address behind a NAT, and one script looping on a revoked key must not
 * lock them out. So:
 * - what is counted, per address and window, is each DISTINCT credential that
 *   failed after being looked up (or answered from the key cache); one script
 *   repeating one bad key counts once (the negative cache answers its repeats
 *   cheaply), someone trying many keys is blocked. A malformed header or key
 *   (wrong shape or checksum) is refused without any lookup and not counted:
 *   it guesses nothing and costs nothing.
 * - a blocked address is refused (429 with Retry-After) only where a lookup
 *   would be needed: a key answered from the in-process cache, valid or not,
 *   is answered as from anywhere else. A valid key that is not cached still
 *   gets through: a blocked address keeps a small budget of lookups per window
 *   (a tenth of the limit, at least one), and a lookup that finds a valid key
 *   gives its share back, so only failed lookups use it up.
 * The hot paths' sync answer (authenticateCached) does no work for this at
 * all: the block is consulted only on the way to a lookup.
 *
 * With Redis the counts per address are shared by every instance (and the
 * management worker); which credentials were already counted, the local
 * knowledge of a block and the budget are per process, so a repeated bad key
 * counts at most once per instance.
 */
export class Authenticator {
  private sessionAuthenticator: SessionAuthenticator | null = null;
  /** Addresses known blocked, with the time their block ends: learnt from the limiter's refusal. */
  private readonly blocked = new LRUCache<string, number>({ max: BLOCKED_MAX });
  /** Distinct failing credentials per address: the shared count that blocks an address. */
  private readonly limiter: RateLimiterAbstract;
  /** "address credential-hash" pairs already counted in this window, so a repeated bad credential counts once. */
  private readonly counted: LRUCache<string, true>;
  /** The lookups a blocked address still gets per window. */
  private readonly blockedLookups: RateLimiterMemory;

  constructor(
    private readonly keys: ApiKeyVerifier,
    options: { failureLimit: number; failureWindowSeconds: number; limiter?: RateLimiterAbstract },
  ) {
    this.limiter = options.limiter ?? new RateLimiterMemory({ points: options.failureLimit, duration: options.failureWindowSeconds });
    this.counted = new LRUCache<string, true>({ max: COUNTED_MAX, ttl: options.failureWindowSeconds * 1000 });
    this.blockedLookups = new RateLimiterMemory({ points: Math.max(1, Math.ceil(options.failureLimit / 10)), duration: options.failureWindowSeconds });
  }

  useSessions(authenticator: SessionAuthenticator): void {
    this.sessionAuthenticator = authenticator;
  }

  /**
   * The answer without any I/O when there is one: a recently verified API key
   * (from the key cache), or no credentials at all when sessions are not
   * asked for. Undefined means "call authenticate()": the hot paths use this
   * to skip the promise machinery for the common case. A valid cached key is
   * answered whatever its address (see the class comment), so the address is
   * not needed here. A key's outcome is the verifier's own answer object
   * (made once per cached key), so nothing is allocated here.
   */
  authenticateCached(req: IncomingMessage, options: { allowSession?: boolean } = {}): AuthOutcome | undefined {
    const creds = readCredentials(req);
    if (creds.kind === 'none') return options.allowSession && this.sessionAuthenticator ? undefined : ANONYMOUS;
    if (creds.kind !== 'api_key') return undefined;
    const result = this.keys.verifyCached(creds.key, creds);
    if (result === undefined || !result.ok) return undefined;
    if (result.principal.orgRequireSso === true && ssoOnlyRefusal(req, result.principal)) return undefined;
    return result;
  }

  async authenticate(req: IncomingMessage, ip: string, options: { allowSession?: boolean } = {}): Promise<AuthOutcome> {
    const creds = readCredentials(req);
    switch (creds.kind) {
      case 'none': {
        if (options.allowSession && this.sessionAuthenticator) {
          const principal = await this.sessionAuthenticator(req);
          if (principal) return { ok: true, principal };
        }
        return { ok: false, anonymous: true };
      }
      case 'invalid':
        return refusal(errors.unauthenticated(creds.message, 'invalid_credentials'));
      case 'api_key': {
        let result: KeyVerification | undefined = this.keys.verifyCached(creds.key, creds);
        let budget: Budget = 'none';
        if (result === undefined) {
          budget = await this.lookupBudget(ip);
          if (typeof budget === 'object') return refusal(budget);
          result = await this.keys.verify(creds.key, creds);
        }
        if (result.ok) {
          if (budget === 'spent') this.giveBack(ip);
          if (result.principal.orgRequireSso === true && ssoOnlyRefusal(req, result.principal)) {
            return { ok: false, anonymous: false, error: errors.forbidden('your organization requires single sign-on in the browser: sign in through your identity provider at /login instead of using an API key', 'sso_required') };
          }
          return { ok: true, principal: result.principal };
        }
        const error = keyRefusal(creds.key, result.reason);
        // A malformed key was refused by its shape alone, with no lookup: nothing to count.
        if (result.reason === 'malformed') return refusal(error);
        return this.fail(ip, creds.hash ?? hashSecret(creds.key, 'hex'), error);
      }
      case 'bearer_token':
        // Neither an API key nor an access token of trackgate's (both are `xxx-` + 40 characters, read as
        // 'api_key' credentials): refused by its shape, with no lookup, so nothing to count.
        return refusal(errors.unauthenticated('invalid bearer token: not an API key and not a trackgate access token (exchange a workload token at /oidc/token for one)', 'invalid_token'));
    }
  }

  /**
   * Whether a credential that is not in the cache may be looked up from this address: 'none' when the
   * address is not blocked, 'spent' when it is and one lookup of its budget was taken, or the 429 to answer.
   */
  private async lookupBudget(ip: string): Promise<Budget> {
    if (this.blocked.size === 0) return 'none';
    const until = this.blocked.get(ip);
    if (until === undefined) return 'none';
    const left = until - Date.now();
    if (left <= 0) {
      this.blocked.delete(ip);
      return 'none';
    }
    try {
      await this.blockedLookups.consume(ip);
      return 'spent';
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      return tooMany(left);
    }
  }

  /** A lookup of the budget that found a valid credential: the budget is for failed lookups only. */
  private giveBack(ip: string): void {
    void this.blockedLookups.reward(ip, 1).catch(() => {});
  }

  /** Counts a failed credential against its address, once per distinct credential and window. */
  private async fail(ip: string, credentialHash: string, error: AppError): Promise<AuthOutcome> {
    const pair = `${ip} ${credentialHash}`;
    if (this.counted.get(pair) !== undefined) return refusal(error);
    this.counted.set(pair, true);
    try {
      await this.limiter.consume(ip);
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        this.blocked.set(ip, Date.now() + res.msBeforeNext);
        return refusal(tooMany(res.msBeforeNext));
      }
      // A limiter backend failure must not turn a 401 into a 500.
    }
    return refusal(error);
  }
}

/** How a lookup from a blocked address was allowed: see Authenticator.lookupBudget. */
type Budget = 'none' | 'spent' | AppError;

function refusal(error: AppError): AuthOutcome {
  return { ok: false, anonymous: false, error };
}

function tooMany(ms: number): AppError {
  return errors.tooManyRequests('too many failed authentication attempts from this address; try again later', ms / 1000);
}
