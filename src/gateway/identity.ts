import type { IncomingMessage } from 'node:http';
import type { AssertionIssuer, AttributedUser } from '../assertions/assertion-issuer.ts';
import type { AuthOutcome } from '../auth/authenticator.ts';
import type { Principal } from '../auth/principal.ts';
import { AppError, errors } from '../http/errors.ts';

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
  | { ok: true; principal: Principal; attributed: AttributedUser | null; /** name, value, name, value, ... */ headers: string[] }
  | { ok: false; anonymous: true }
  | { ok: false; anonymous: false; error: AppError };

/** Header values are ASCII; anything else (a non-ASCII email) is percent-encoded rather than rejected by Node. */
function headerValue(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

const MAX_ATTRIBUTIONS_PER_PRINCIPAL = 64;

/**
 * Turns a request into the identity that travels upstream: the principal,
 * the attributed user of a service-account run, the plain X-Trackgate-*
 * headers and the signed assertion. Everything derived from a principal is
 * cached on the Principal object (which the key verifier reuses while the key
 * is cached and replaces when anything about the identity changes), so a
 * request with a recently seen key costs a hash, a few map lookups and no
 * signing.
 */
export class GatewayIdentity {
  private readonly baseHeaders = new WeakMap<Principal, string[]>();
  private readonly attributions = new WeakMap<Principal, Map<string, Promise<AttributedUser>>>();

  constructor(
    private readonly authenticate: AuthenticateFn,
    private readonly assertions: AssertionIssuer,
    private readonly attribute: Attributor | null = null,
  ) {}

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
    const assertion = this.assertions.assertionFor(principal, attributed);
    const token = typeof assertion === 'string' ? assertion : await assertion;
    const headers = this.headersFor(principal).slice();
    if (attributed) {
      headers.push(IDENTITY_HEADERS.attributedUser, headerValue(attributed.username));
      headers.push(IDENTITY_HEADERS.attributedEmail, headerValue(attributed.email));
    }
    headers.push(IDENTITY_HEADERS.assertion, token);
    return { ok: true, principal, attributed, headers };
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

  private attributionFor(principal: Principal, claim: AttributionClaim): Promise<AttributedUser> {
    if (!this.attribute) {
      return Promise.reject(errors.forbidden('attribution of service-account runs (X-WANDB-USERNAME) is not available on this gateway', 'attribution_unavailable'));
    }
    let perPrincipal = this.attributions.get(principal);
    if (!perPrincipal) {
      perPrincipal = new Map();
      this.attributions.set(principal, perPrincipal);
    }
    const slot = `${claim.username ?? ''}\u0000${claim.email ?? ''}`;
    let p = perPrincipal.get(slot);
    if (!p) {
      // Bounded: a caller cycling through names cannot grow this without limit.
      if (perPrincipal.size >= MAX_ATTRIBUTIONS_PER_PRINCIPAL) perPrincipal.clear();
      p = this.attribute(principal, claim);
      const map = perPrincipal;
      // Answers (members and non-members alike) are kept as long as the principal is; other failures are retried.
      p.catch((err: unknown) => {
        if (!(err instanceof AppError) || err.status >= 500) map.delete(slot);
      });
      perPrincipal.set(slot, p);
    }
    return p;
  }
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
