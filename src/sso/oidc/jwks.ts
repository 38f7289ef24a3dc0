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
  /**
   * Bytes of JWKS documents held in all, across key sets (default 16 MB).
   * Each answer is at most 512 KB, but an admin can point many connections
   * at many key sets: past this, the least recently used sets are dropped
   * (and fetched again when next needed).
   */
  maxBytes?: number;
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
  // Boxed: lru-cache re-sizes an entry only when its value changes, and the size is known after the fetch.
  private readonly sets: LRUCache<string, { getKey: JWTVerifyGetKey }>;

  constructor(private readonly options: JwksRegistryOptions) {
    this.sets = new LRUCache({ max: options.maxEntries ?? 1000, maxSize: options.maxBytes ?? 16 * 1024 * 1024 });
  }

  /** Bytes of JWKS documents held now. */
  get cachedBytes(): number {
    return this.sets.calculatedSize;
  }

  get(jwksUri: string): JWTVerifyGetKey {
    const held = this.sets.get(jwksUri);
    if (held) return held.getKey;
    const fetchJwks = this.options.fetcher.fetchFor('jwks');
    const created: JWTVerifyGetKey = createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: this.options.cooldownSeconds * 1000,
      cacheMaxAge: this.options.maxAgeSeconds * 1000,
      timeoutDuration: this.options.timeoutMs,
      headers: { 'user-agent': 'trackgate' },
      [customFetch]: async (url: string, init: RequestInit) => {
        const res = await fetchJwks(url, init);
        // The set now holds this document: account for its size.
        const body = await res.arrayBuffer();
        if (res.status === 200) this.sets.set(jwksUri, { getKey: created }, { size: Math.max(1, body.byteLength) });
        return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
      },
    });
    this.sets.set(jwksUri, { getKey: created }, { size: 1 });
    return created;
  }

  /** Forget a key set (after an admin re-tests a connection, for example). */
  forget(jwksUri: string): void {
    this.sets.delete(jwksUri);
  }
}
