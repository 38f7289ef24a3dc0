import type { IncomingMessage } from 'node:http';
import type { AssertionIssuer, AttributedUser, SignedAssertion } from '../assertions/assertion-issuer.ts';
import type { AuthOutcome } from '../auth/authenticator.ts';
import type { Principal } from '../auth/principal.ts';
import { AppError, errors } from '../errors/app-error.ts';

/** Authenticates a request (API key, bearer token, optionally the browser session). */
export type AuthenticateFn = (req: IncomingMessage, options: { allowSession: boolean }) => Promise<AuthOutcome>;

/** What the tracking client claims about the person behind a service-account run. */
export interface AttributionClaim {
  username: string | null;
  email: string | null;
}

/**
 * Resolves X-WANDB-USERNAME / X-WANDB-USER-EMAIL for a service account: the
 * user when they are a member of the service account's team; throws an
 * AppError (403) otherwise.
 */
export type Attributor = (principal: Principal, claim: AttributionClaim) => Promise<AttributedUser>;

export const IDENTITY_HEADERS = {
  user: 'X-Trackgate-User',
  email: 'X-Trackgate-Email',
  org: 'X-Trackgate-Org',
  teams: 'X-Trackgate-Teams',
  principalType: 'X-Trackgate-Principal-Type',
  attributedUser: 'X-Trackgate-Attributed-User',
  attributedEmail: 'X-Trackgate-Attributed-Email',
  assertion: 'X-Trackgate-Assertion',
} as const;

export type IdentityResult =
  | { ok: true; principal: Principal; attributed: AttributedUser | null; /** name, value, name, value, ...; shared: never mutate */ headers: readonly string[] }
  | { ok: false; anonymous: true }
  | { ok: false; anonymous: false; error: AppError };

/** How the gateway authenticates: the full (async) path, and optionally an answer without I/O for the common case. */
export interface Authentication {
  authenticate: AuthenticateFn;
  /** A recently verified key (or no credentials when no session is asked for), decided synchronously; undefined otherwise. */
  cached?: (req: IncomingMessage, options: { allowSession: boolean }) => AuthOutcome | undefined;
}

/** Header values are ASCII; anything else (a non-ASCII email) is percent-encoded rather than rejected by Node. */
function headerValue(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

const MAX_ATTRIBUTIONS_PER_PRINCIPAL = 64;

interface Attribution {
  promise: Promise<AttributedUser>;
  /** Set once settled, so that the synchronous path can use it. */
  value?: AttributedUser;
  error?: AppError;
}

/**
 * Turns a request into the identity that travels upstream: the principal,
 * the attributed user of a service-account run, the plain X-Trackgate-*
 * headers and the signed assertion. Everything derived from a principal is
 * cached on the Principal object (which the key verifier reuses while the key
 * is cached and replaces when anything about the identity changes), so a
 * request with a recently seen key costs a hash, a few map lookups and no
 * signing, and is answered synchronously (resolveSync).
 */
export class GatewayIdentity {
  private readonly baseHeaders = new WeakMap<Principal, string[]>();
  private readonly attributions = new WeakMap<Principal, Map<string, Attribution>>();
  /** The finished result per principal and attributed user, for the assertion it was made with: a cached key allocates nothing. */
  private readonly results = new WeakMap<Principal, Map<string, { assertion: SignedAssertion; result: IdentityResult & { ok: true } }>>();
  private readonly authenticate: AuthenticateFn;
  private readonly cachedAuth: Authentication['cached'] | null;
  private readonly plainHeaders: boolean;

  constructor(
    auth: AuthenticateFn | Authentication,
    private readonly assertions: AssertionIssuer,
    private readonly attribute: Attributor | null = null,
    options: { /** The plain X-Trackgate-* headers besides the assertion (default true). */ plainHeaders?: boolean } = {},
  ) {
    this.plainHeaders = options.plainHeaders ?? true;
    this.authenticate = typeof auth === 'function' ? auth : auth.authenticate;
    this.cachedAuth = typeof auth === 'function' ? null : (auth.cached ?? null);
  }

  /**
   * The identity when it can be had without I/O (a cached key, a settled
   * attribution and a fresh cached assertion); undefined when resolve() is needed.
   */
  resolveSync(req: IncomingMessage, options: { allowSession: boolean }): IdentityResult | undefined {
    if (!this.cachedAuth) return undefined;
    const outcome = this.cachedAuth(req, options);
    if (outcome === undefined) return undefined;
    if (!outcome.ok) return outcome.anonymous ? outcome : undefined;
    const principal = outcome.principal;
    let attributed: AttributedUser | null = null;
    if (principal.type === 'service_account') {
      const claim = readAttributionClaim(req);
      if (claim) {
        const a = this.attributions.get(principal)?.get(slotOf(claim));
        if (!a) return undefined;
        if (a.error) return { ok: false, anonymous: false, error: a.error };
        if (!a.value) return undefined;
        attributed = a.value;
      }
    }
    // The finished result while its assertion is fresh: one WeakMap and one Map lookup.
    const done = this.results.get(principal)?.get(attributed ? attributed.id : '');
    if (done !== undefined && this.assertions.isFresh(done.assertion)) return done.result;
    const assertion = this.assertions.signedFor(principal, attributed);
    if (assertion instanceof Promise) return undefined;
    return this.resultFor(principal, attributed, assertion);
  }

  async resolve(req: IncomingMessage, options: { allowSession: boolean }): Promise<IdentityResult> {
    const outcome = await this.authenticate(req, options);
    if (!outcome.ok) return outcome;
    const principal = outcome.principal;
    let attributed: AttributedUser | null = null;
    if (principal.type === 'service_account') {
      const claim = readAttributionClaim(req);
      if (claim) {
        try {
          attributed = await this.attributionFor(principal, claim);
        } catch (err) {
          if (err instanceof AppError) return { ok: false, anonymous: false, error: err };
          throw err;
        }
      }
    }
    const signed = this.assertions.signedFor(principal, attributed);
    return this.resultFor(principal, attributed, signed instanceof Promise ? await signed : signed);
  }

  /** The plain identity headers of a principal, made once per Principal object. */
  headersFor(principal: Principal): string[] {
    let h = this.baseHeaders.get(principal);
    if (!h) {
      h = [
        IDENTITY_HEADERS.user, headerValue(principal.username),
        IDENTITY_HEADERS.org, headerValue(principal.orgSlug),
        IDENTITY_HEADERS.teams, headerValue(principal.teams.map((t) => t.name).join(',')),
        IDENTITY_HEADERS.principalType, principal.type,
      ];
      if (principal.email) h.push(IDENTITY_HEADERS.email, headerValue(principal.email));
      this.baseHeaders.set(principal, h);
    }
    return h;
  }

  /** The result with the identity headers (the plain ones when configured, and the assertion); one shared object per (principal, attributed user, assertion). */
  private resultFor(principal: Principal, attributed: AttributedUser | null, assertion: SignedAssertion): IdentityResult & { ok: true } {
    const token = assertion.token;
    let perPrincipal = this.results.get(principal);
    if (!perPrincipal) {
      perPrincipal = new Map();
      this.results.set(principal, perPrincipal);
    }
    const slot = attributed ? attributed.id : '';
    const hit = perPrincipal.get(slot);
    if (hit && hit.assertion.token === token) {
      hit.assertion = assertion;
      return hit.result;
    }
    const headers = this.plainHeaders ? this.headersFor(principal).slice() : [];
    if (attributed && this.plainHeaders) {
      headers.push(IDENTITY_HEADERS.attributedUser, headerValue(attributed.username));
      headers.push(IDENTITY_HEADERS.attributedEmail, headerValue(attributed.email));
    }
    headers.push(IDENTITY_HEADERS.assertion, token);
    const result = { ok: true as const, principal, attributed, headers };
    if (perPrincipal.size >= MAX_ATTRIBUTIONS_PER_PRINCIPAL) perPrincipal.clear();
    perPrincipal.set(slot, { assertion, result });
    return result;
  }

  private attributionFor(principal: Principal, claim: AttributionClaim): Promise<AttributedUser> {
    if (!this.attribute) {
      return Promise.reject(errors.forbidden('attribution of service-account runs (X-WANDB-USERNAME) is not available on this gateway', 'attribution_unavailable'));
    }
    let perPrincipal = this.attributions.get(principal);
    if (!perPrincipal) {
      perPrincipal = new Map();
      this.attributions.set(principal, perPrincipal);
    }
    const slot = slotOf(claim);
    const known = perPrincipal.get(slot);
    if (known) return known.promise;
    // Bounded: a caller cycling through names cannot grow this without limit.
    if (perPrincipal.size >= MAX_ATTRIBUTIONS_PER_PRINCIPAL) perPrincipal.clear();
    const entry: Attribution = { promise: this.attribute(principal, claim) };
    const map = perPrincipal;
    // Answers (members and non-members alike) are kept as long as the principal is; other failures are retried.
    entry.promise.then(
      (v) => {
        entry.value = v;
      },
      (err: unknown) => {
        if (err instanceof AppError && err.isClientError) entry.error = err;
        else map.delete(slot);
      },
    );
    perPrincipal.set(slot, entry);
    return entry.promise;
  }
}

function slotOf(claim: AttributionClaim): string {
  return `${claim.username ?? ''}\u0000${claim.email ?? ''}`;
}

/** X-WANDB-USERNAME / X-WANDB-USER-EMAIL as sent by the tracking client; null when neither is there. */
export function readAttributionClaim(req: IncomingMessage): AttributionClaim | null {
  const u = req.headers['x-wandb-username'];
  const e = req.headers['x-wandb-user-email'];
  const username = typeof u === 'string' && u.trim() !== '' ? u.trim() : null;
  const email = typeof e === 'string' && e.trim() !== '' ? e.trim() : null;
  if (username === null && email === null) return null;
  return { username, email };
}
