import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError, errors } from '../http/errors.ts';
import type { KeyVerifier } from '../keys/key-verifier.ts';
import type { Principal } from './principal.ts';
import { readCredentials } from './credentials.ts';

export type AuthOutcome =
  | { ok: true; principal: Principal }
  /** No credentials at all: the caller decides whether anonymous is fine. */
  | { ok: false; anonymous: true }
  | { ok: false; anonymous: false; error: AppError };

/** Verifies a Bearer token that is not an API key (federation access tokens). */
export type BearerTokenVerifier = (token: string) => Promise<Principal | null>;
/** Reads a browser session from the request's cookies; null when there is none. */
export type SessionAuthenticator = (req: IncomingMessage) => Promise<Principal | null>;

/**
 * Under the policy "require SSO", a person's API key is for tools (the
 * tracking client, scripts), not for a browser: a browser request carrying it
 * (it asks for HTML, or sends the Sec-Fetch-Dest header every browser sends) is
 * refused. The instance operator keeps the way in, to repair SSO.
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
  owner_inactive: 'invalid API key: no such key',
};

/**
 * Turns a request into a Principal. Used by the lean hot path (forward auth,
 * proxy) and by the management API alike, so the rules are the same
 * everywhere: malformed credentials and bad keys are 401 with
 * WWW-Authenticate, and an address that keeps failing is blocked for a while.
 */
export class Authenticator {
  private bearerVerifier: BearerTokenVerifier | null = null;
  private sessionAuthenticator: SessionAuthenticator | null = null;
  /** Addresses currently blocked, with the time their block ends; checked without touching the limiter. */
  private readonly blocked = new Map<string, number>();
  private readonly limiter: RateLimiterAbstract;

  constructor(
    private readonly keys: KeyVerifier,
    options: { failureLimit: number; failureWindowSeconds: number; limiter?: RateLimiterAbstract },
  ) {
    this.limiter = options.limiter ?? new RateLimiterMemory({ points: options.failureLimit, duration: options.failureWindowSeconds });
  }

  useBearerTokens(verifier: BearerTokenVerifier): void {
    this.bearerVerifier = verifier;
  }

  useSessions(authenticator: SessionAuthenticator): void {
    this.sessionAuthenticator = authenticator;
  }

  /** 429 when this address has failed too often; checked before anything else. */
  blockedError(ip: string): AppError | null {
    if (this.blocked.size === 0) return null;
    const until = this.blocked.get(ip);
    if (until === undefined) return null;
    const left = until - Date.now();
    if (left <= 0) {
      this.blocked.delete(ip);
      return null;
    }
    return errors.tooManyRequests('too many failed authentication attempts from this address; try again later', left / 1000);
  }

  /**
   * The answer without any I/O when there is one: a recently verified API key
   * (from the key cache), or no credentials at all when sessions are not
   * asked for. Undefined means "call authenticate()": the hot paths use this
   * to skip the promise machinery for the common case. The address is asked
   * for only when some address is blocked. A key's outcome is the verifier's
   * own answer object (made once per cached key), so nothing is allocated here.
   */
  authenticateCached(req: IncomingMessage, ipOf: (req: IncomingMessage) => string, options: { allowSession?: boolean } = {}): AuthOutcome | undefined {
    if (this.blocked.size !== 0 && this.blockedError(ipOf(req))) return undefined;
    const creds = readCredentials(req);
    if (creds.kind === 'none') return options.allowSession && this.sessionAuthenticator ? undefined : ANONYMOUS;
    if (creds.kind !== 'api_key') return undefined;
    const result = this.keys.verifyCached(creds.key, creds);
    if (result === undefined || !result.ok) return undefined;
    if (result.principal.orgRequireSso === true && ssoOnlyRefusal(req, result.principal)) return undefined;
    return result;
  }

  async authenticate(req: IncomingMessage, ip: string, options: { allowSession?: boolean } = {}): Promise<AuthOutcome> {
    const blocked = this.blockedError(ip);
    if (blocked) return { ok: false, anonymous: false, error: blocked };
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
        return this.fail(ip, errors.unauthenticated(creds.message, 'invalid_credentials'));
      case 'api_key': {
        const result = await this.keys.verify(creds.key, creds);
        if (result.ok) {
          if (result.principal.orgRequireSso === true && ssoOnlyRefusal(req, result.principal)) {
            return { ok: false, anonymous: false, error: errors.forbidden('your organization requires single sign-on in the browser: sign in through your identity provider at /login instead of using an API key', 'sso_required') };
          }
          return { ok: true, principal: result.principal };
        }
        return this.fail(ip, errors.unauthenticated(REASONS[result.reason] ?? 'invalid API key', result.reason === 'expired' || result.reason === 'revoked' ? `key_${result.reason}` : 'invalid_key'));
      }
      case 'bearer_token': {
        const principal = this.bearerVerifier ? await this.bearerVerifier(creds.token) : null;
        if (principal) return { ok: true, principal };
        return this.fail(ip, errors.unauthenticated('invalid bearer token: not an API key and not a valid access token', 'invalid_token'));
      }
    }
  }

  private async fail(ip: string, error: AppError): Promise<AuthOutcome> {
    try {
      await this.limiter.consume(ip);
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        this.blocked.set(ip, Date.now() + res.msBeforeNext);
        return { ok: false, anonymous: false, error: errors.tooManyRequests('too many failed authentication attempts from this address; try again later', res.msBeforeNext / 1000) };
      }
      // A limiter backend failure must not turn a 401 into a 500.
    }
    return { ok: false, anonymous: false, error };
  }
}
