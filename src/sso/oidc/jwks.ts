import { createRemoteJWKSet, customFetch } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { IdpFetcher } from './idp-fetch.ts';

export interface JwksRegistryOptions {
  /**
   * After a fetch, an unknown `kid` does not trigger another fetch for this
   * long: a stream of tokens with random kids costs at most one fetch per
   * cooldown (config ssoJwksCooldownSeconds).
   */
  cooldownSeconds: number;
  /** Keys are re-fetched when older than this even if every kid is known. */
  maxAgeSeconds: number;
  timeoutMs: number;
  maxEntries?: number;
  /** Every JWKS fetch goes through it: bounded size, JSON only, public addresses only. */
  fetcher: IdpFetcher;
}

/**
 * One cached key set per jwks_uri, shared by every connection using that IdP.
 *
 * Built on jose's createRemoteJWKSet rather than openid-client's internal
 * cache: openid-client re-fetches on an unknown kid only when its cache is
 * at least 60 s old (not configurable), so a login right after an IdP rotated
 * its key would fail for up to a minute. jose's set re-fetches on an unknown
 * kid once the (configurable) cooldown has passed, de-duplicates concurrent
 * fetches, and refuses a kid-less token when several keys could match.
 */
export class JwksRegistry {
  private readonly sets: LRUCache<string, JWTVerifyGetKey>;

  constructor(private readonly options: JwksRegistryOptions) {
    this.sets = new LRUCache({ max: options.maxEntries ?? 1000 });
  }

  get(jwksUri: string): JWTVerifyGetKey {
    let set = this.sets.get(jwksUri);
    if (!set) {
      set = createRemoteJWKSet(new URL(jwksUri), {
        cooldownDuration: this.options.cooldownSeconds * 1000,
        cacheMaxAge: this.options.maxAgeSeconds * 1000,
        timeoutDuration: this.options.timeoutMs,
        headers: { 'user-agent': 'trackgate' },
        [customFetch]: this.options.fetcher.fetchFor('jwks'),
      });
      this.sets.set(jwksUri, set);
    }
    return set;
  }

  /** Forget a key set (after an admin re-tests a connection, for example). */
  forget(jwksUri: string): void {
    this.sets.delete(jwksUri);
  }
}
