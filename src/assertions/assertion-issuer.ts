import { SignJWT } from 'jose';
import type { Principal } from '../auth/principal.ts';
import type { SigningKeyService } from './signing-keys.service.ts';

/** The person a service-account run is attributed to (X-WANDB-USERNAME / X-WANDB-USER-EMAIL). */
export interface AttributedUser {
  id: string;
  username: string;
  email: string;
}

export interface AssertionOptions {
  /** `iss`: trackgate's public URL. */
  issuer: string;
  /** `aud`: the tracking API. */
  audience: string;
  ttlSeconds: number;
}

/** A signed assertion and when it stops being handed out. */
export interface SignedAssertion {
  token: string;
  kid: string;
  /** Epoch ms after which a fresh one is signed (shortly before it expires). */
  refreshAt: number;
}

/** The claims of an identity assertion, as a verifier reads them. */
export interface AssertionClaims {
  iss: string;
  aud: string;
  sub: string;
  iat: number;
  exp: number;
  principal_type: Principal['type'];
  username: string;
  email: string | null;
  org: string;
  teams: string[];
  /** Role per team, when the principal has teams (a service account is "member": write access to its team). */
  team_roles?: Record<string, string>;
  attributed_user: string | null;
  attributed_user_email?: string;
}

/**
 * Signs the short-lived JWT that tells the tracking API who the caller is
 * (X-Trackgate-Assertion). Signing is the expensive part of the hot path, so
 * an assertion is reused for the same principal (and attributed user) until
 * shortly before it expires. The cache hangs off the Principal object itself
 * (the key verifier hands out the same object while it caches the key), so an
 * identity change, which makes a new Principal, never reuses a stale
 * assertion and nothing here needs to be invalidated or bounded separately.
 */
export class AssertionIssuer {
  private readonly cache = new WeakMap<Principal, Map<string, SignedAssertion | Promise<SignedAssertion>>>();
  private readonly ttlMs: number;
  private readonly reuseMs: number;

  constructor(
    private readonly keys: SigningKeyService,
    private readonly options: AssertionOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.ttlMs = options.ttlSeconds * 1000;
    // Hand out an assertion while it has at least a quarter (and at least 10 s) of its life left.
    this.reuseMs = Math.max(0, this.ttlMs - Math.max(10_000, this.ttlMs / 4));
  }

  /** Whether a signed assertion may still be handed out: enough of its life left, and signed by the current key. */
  isFresh(a: SignedAssertion): boolean {
    return a.refreshAt > this.now() && a.kid === this.keys.current().kid;
  }

  /** The assertion for a principal: the cached one while it is fresh, else a promise of a newly signed one. */
  signedFor(principal: Principal, attributed: AttributedUser | null): SignedAssertion | Promise<SignedAssertion> {
    let perPrincipal = this.cache.get(principal);
    if (!perPrincipal) {
      perPrincipal = new Map();
      this.cache.set(principal, perPrincipal);
    }
    const slot = attributed ? attributed.id : '';
    const hit = perPrincipal.get(slot);
    if (hit !== undefined) {
      if (hit instanceof Promise) return hit;
      if (this.isFresh(hit)) return hit;
    }
    const map = perPrincipal;
    const p = this.sign(principal, attributed).then(
      (c) => {
        map.set(slot, c);
        return c;
      },
      (err: unknown) => {
        map.delete(slot);
        throw err;
      },
    );
    map.set(slot, p);
    return p;
  }

  claimsFor(principal: Principal, attributed: AttributedUser | null): Omit<AssertionClaims, 'iss' | 'aud' | 'iat' | 'exp'> {
    const teamRoles: Record<string, string> = {};
    for (const t of principal.teams) teamRoles[t.name] = t.role;
    return {
      sub: principal.id,
      principal_type: principal.type,
      username: principal.username,
      email: principal.email,
      org: principal.orgSlug,
      teams: principal.teams.map((t) => t.name),
      ...(principal.teams.length ? { team_roles: teamRoles } : {}),
      attributed_user: attributed ? attributed.username : null,
      ...(attributed ? { attributed_user_email: attributed.email } : {}),
    };
  }

  private async sign(principal: Principal, attributed: AttributedUser | null): Promise<SignedAssertion> {
    const key = this.keys.current();
    const now = this.now();
    const iat = Math.floor(now / 1000);
    const { sub, ...claims } = this.claimsFor(principal, attributed);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.round(this.ttlMs / 1000))
      .sign(key.privateKey);
    return { token, kid: key.kid, refreshAt: now + this.reuseMs };
  }
}
