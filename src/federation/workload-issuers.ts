import type { JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.ts';
import { discoveryUrl } from '../sso/oidc/discovery.ts';
import { IdpFetchError } from '../sso/oidc/idp-fetch.ts';
import type { IdpFetcher } from '../sso/oidc/idp-fetch.ts';
import { urlProblem } from '../sso/oidc/issuer.ts';
import type { JwksRegistry } from '../sso/oidc/jwks.ts';

/**
 * Why an issuer's keys could not be had. `unavailable`: the issuer (or its JWKS host) could not be reached or
 * answered a 5xx — not the client's fault, answered 503; `invalid`: it answered, but not with a usable
 * discovery document (wrong issuer, no jwks_uri, a jwks_uri on a scheme or address trackgate does not use)
 * — the assertion cannot be verified, so it is refused like any other.
 */
export class WorkloadIssuerError extends Error {
  constructor(
    readonly problem: 'unavailable' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'WorkloadIssuerError';
  }
}

export interface WorkloadIssuersOptions {
  /** TRACKGATE_ALLOW_HTTP_ISSUERS: an http:// jwks_uri on loopback (development, tests). */
  allowHttp: boolean;
  /** How long a discovery document is used before it is read again (default 1 h). */
  ttlMs?: number;
  /**
   * How long a failed discovery is remembered (default 15 s): a down or broken issuer is not asked again by
   * every exchange, yet one that comes back is used again soon.
   */
  negativeTtlMs?: number;
  /** Issuers remembered at most (default 500): only issuers some rule trusts are ever looked up. */
  maxEntries?: number;
}

type Entry = { ok: true; jwksUri: string; until: number } | { ok: false; error: WorkloadIssuerError; until: number };

/**
 * The keys of the workload issuers that trust rules name (GitHub Actions, a Kubernetes cluster's service-account
 * issuer, GitLab, …): their OpenID discovery document (`{iss}/.well-known/openid-configuration`, which
 * Kubernetes serves too, pointing at /openid/v1/jwks) read through the one IdpFetcher (bounded, JSON only,
 * public addresses only), whose issuer must be the token's `iss` exactly (RFC 8414 §3.3: no trailing-slash
 * leniency here, unlike SSO where an admin typed the URL), then the keys through the one JwksRegistry
 * (cached per jwks_uri, with its cooldown against random kids).
 */
export class WorkloadIssuers {
  private readonly cache: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;

  constructor(
    private readonly fetcher: IdpFetcher,
    private readonly jwks: JwksRegistry,
    private readonly logger: Logger,
    private readonly options: WorkloadIssuersOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache({ max: options.maxEntries ?? 500 });
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 15_000;
  }

  /** The key lookup for tokens of `issuer`; throws WorkloadIssuerError. Call only for an issuer a rule trusts. */
  async keysFor(issuer: string): Promise<JWTVerifyGetKey> {
    const entry = await this.entry(issuer);
    if (!entry.ok) throw entry.error;
    return this.jwks.get(entry.jwksUri);
  }

  private async entry(issuer: string): Promise<Entry> {
    const held = this.cache.get(issuer);
    if (held && held.until > this.now()) return held;
    const running = this.inflight.get(issuer);
    if (running) return running;
    const p = this.discover(issuer)
      .then((jwksUri): Entry => ({ ok: true, jwksUri, until: this.now() + this.ttlMs }))
      .catch((err: unknown): Entry => {
        if (!(err instanceof WorkloadIssuerError)) throw err;
        this.logger.warn({ issuer, problem: err.problem, reason: err.message }, 'federation: the workload issuer could not be used');
        return { ok: false, error: err, until: this.now() + this.negativeTtlMs };
      })
      .then((e) => {
        this.cache.set(issuer, e);
        return e;
      })
      .finally(() => this.inflight.delete(issuer));
    this.inflight.set(issuer, p);
    return p;
  }

  /** The issuer's jwks_uri, from its discovery document. */
  private async discover(issuer: string): Promise<string> {
    // An http:// issuer (a rule saved in development, a database copied to production) is refused without a
    // fetch unless http issuers are allowed: the fetcher would refuse it too, but as "unreachable" (a 503).
    const issuerProblem = urlProblem(issuer, { allowHttpIssuers: this.options.allowHttp }, 'the issuer');
    if (issuerProblem) throw new WorkloadIssuerError('invalid', issuerProblem);
    const url = discoveryUrl(issuer);
    let res: Response;
    try {
      res = await this.fetcher.fetch('discovery', url, { headers: { accept: 'application/json' } });
    } catch (err) {
      if (err instanceof IdpFetchError) {
        // A refused address is 'unreachable' too: the fetcher does not tell it apart from a closed port (no scanning through trackgate).
        throw new WorkloadIssuerError(err.problem === 'unreachable' || err.problem === 'timeout' ? 'unavailable' : 'invalid', err.message);
      }
      throw err;
    }
    if (res.status >= 500) throw new WorkloadIssuerError('unavailable', `${url} answered HTTP ${res.status}`);
    if (res.status !== 200) throw new WorkloadIssuerError('invalid', `${url} answered HTTP ${res.status}`);
    let doc: unknown;
    try {
      doc = await res.json();
    } catch {
      throw new WorkloadIssuerError('invalid', `${url} did not answer with JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new WorkloadIssuerError('invalid', `${url} is not a discovery document`);
    const { issuer: docIssuer, jwks_uri: jwksUri } = doc as Record<string, unknown>;
    if (docIssuer !== issuer) throw new WorkloadIssuerError('invalid', `the discovery document's issuer is ${JSON.stringify(docIssuer)}, not the token's iss ${JSON.stringify(issuer)}`);
    if (typeof jwksUri !== 'string' || jwksUri === '') throw new WorkloadIssuerError('invalid', `${url} has no jwks_uri`);
    const problem = urlProblem(jwksUri, { allowHttpIssuers: this.options.allowHttp }, 'the jwks_uri');
    if (problem) throw new WorkloadIssuerError('invalid', problem);
    try {
      await this.fetcher.checkAddress('jwks', jwksUri);
    } catch (err) {
      if (err instanceof IdpFetchError) throw new WorkloadIssuerError('unavailable', err.message);
      throw err;
    }
    return jwksUri;
  }
}
