import { LRUCache } from 'lru-cache';
import type { Principal } from '../auth/principal.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import { hashSecret } from '../crypto/tokens.ts';
import { isUnavailable } from '../errors/app-error.ts';
import { KEY_LENGTH, checkKeyShape } from './key-format.ts';
import type { KeyShapeProblem } from './key-format.ts';
import type { ApiKeyRow, KeysRepository } from './keys.repository.ts';
import type { LastUsedRecorder } from './last-used.ts';

/**
 * Turns a key row into the identity of its owner; 'inactive' when the owner exists but is deactivated (the key
 * is kept, and works again on reactivation), null when the owner is gone or may not act for another reason.
 */
export type KeyOwnerLoader = (row: ApiKeyRow) => Promise<Principal | 'inactive' | null>;

/**
 * Another kind of credential verified on the same path as API keys (its own three-letter prefix, the same
 * shape): a federation access token (src/federation). Given the credential's hash, its owner's identity and
 * its revocation and expiry times, or null when there is no such credential or its owner may not act.
 */
export type CredentialSource = (hash: string) => Promise<{ principal: Principal; revokedAt: number | null; expiresAt: number | null } | null>;

export type KeyVerification =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked' | 'owner_inactive'; shape?: KeyShapeProblem };

/** A key's row as the hot path needs it; `until` is when the cached answer must be looked up again. */
type CacheEntry =
  | { principal: Principal; /** the answer, made once */ ok: KeyVerification; revokedAt: number | null; expiresAt: number | null; until: number; /** when last_used_at was last recorded */ usedAt: number }
  | { miss: true; until: number; /** the key exists but its owner is deactivated */ inactive?: true };

/** last_used_at is kept to the second: a key used thousands of times a second is recorded about once a second. */
const LAST_USED_RESOLUTION_MS = 1000;

export interface KeyVerifierOptions {
  ttlMs: number;
  negativeTtlMs: number;
  maxEntries: number;
  /**
   * Stale-while-unavailable (TRACKGATE_KEY_CACHE_STALE_SECONDS): how long past its TTL a key's cached
   * answer is still given when the lookup that should refresh it finds the database unavailable; 0: never.
   */
  staleMs?: number;
}

/**
 * After a lookup found the database unavailable, keys with a stale entry are answered from it at once
 * for this long, without waiting for the database again: during a partition every lookup would
 * otherwise wait the whole TRACKGATE_DATABASE_TIMEOUT_MS. One lookup per key and period still tries.
 */
const UNAVAILABLE_BREAKER_MS = 1000;

const UNKNOWN: KeyVerification = Object.freeze({ ok: false, reason: 'unknown' });
const REVOKED: KeyVerification = Object.freeze({ ok: false, reason: 'revoked' });
const EXPIRED: KeyVerification = Object.freeze({ ok: false, reason: 'expired' });
const OWNER_INACTIVE: KeyVerification = Object.freeze({ ok: false, reason: 'owner_inactive' });

/**
 * The key's hash, kept on its credentials object when there is one: a key the hot path could not answer
 * from the cache goes on to the lookup with the same credentials, and a connection's remembered
 * credentials (src/auth/credentials.ts) are hashed once for all its requests.
 */
function hashOf(key: string, creds: { hash?: string } | undefined): string {
  if (creds?.hash !== undefined) return creds.hash;
  const hash = hashSecret(key, 'hex'); // api_keys.key_hash's encoding (src/crypto/tokens.ts)
  if (creds) creds.hash = hash;
  return hash;
}

function malformed(shape: KeyShapeProblem): KeyVerification {
  return { ok: false, reason: 'malformed', shape };
}

/**
 * The hot path of the gateway: shape and checksum first (no I/O), then an
 * in-process LRU keyed by the key's SHA-256 (remembering recent misses too),
 * then one indexed lookup. Its cost does not depend on how many keys exist.
 */
export class KeyVerifier {
  private readonly cache: LRUCache<string, CacheEntry>;
  private readonly loaders = new Map<string, KeyOwnerLoader>();
  /** Credentials that are not API keys, by their prefix (see CredentialSource). */
  private readonly sources = new Map<string, CredentialSource>();
  /** Lookups in flight, so a burst of requests with one uncached key makes one query. */
  private readonly inflight = new Map<string, Promise<CacheEntry>>();
  private generation = 0;
  private readonly staleMs: number;
  /** Until when a key with a stale entry is answered from it without a lookup (see UNAVAILABLE_BREAKER_MS). */
  private unavailableUntil = 0;

  constructor(
    private readonly repo: KeysRepository,
    private readonly lastUsed: LastUsedRecorder,
    invalidator: CacheInvalidator,
    private readonly options: KeyVerifierOptions,
    private readonly now: () => number = Date.now,
  ) {
    // Expiry is kept on the entries (checked with the one clock reading of the request) rather than by
    // the LRU's own TTL tracking, which would read a second clock and keep a parallel array of timestamps.
    this.cache = new LRUCache<string, CacheEntry>({ max: options.maxEntries });
    this.staleMs = Math.max(0, options.staleMs ?? 0);
    invalidator.onInvalidate((event) => {
      this.generation++;
      if (event.kind === 'key') this.cache.delete(event.hash);
      else this.cache.clear();
    });
  }

  registerOwnerLoader(ownerType: 'user' | 'service_account', loader: KeyOwnerLoader): void {
    this.loaders.set(ownerType, loader);
  }

  /** Credentials of another kind with `prefix` (one of VERIFIED_PREFIXES that is not an API key's) are looked up here. */
  registerSource(prefix: string, source: CredentialSource): void {
    this.sources.set(prefix, source);
  }

  /**
   * Synchronous answer when the key is cached (valid or a recent miss); undefined when a lookup is needed.
   * Given the credentials object, the hash is kept on it (see hashOf).
   */
  verifyCached(key: string, creds?: { hash?: string }): KeyVerification | undefined {
    if (key.length !== KEY_LENGTH) return malformed(checkKeyShape(key) ?? 'length');
    return this.cached(key, hashOf(key, creds));
  }

  /**
   * The cached answer when there is one; otherwise one (shared) lookup. When the lookup finds the
   * database unavailable, a key whose answer was cached less than the stale bound past its TTL keeps
   * that answer (stale-while-unavailable; revocation and expiry are still judged on it); any other key
   * gets the `unavailable` error: a key that could not be checked is neither good nor bad.
   */
  async verify(key: string, creds?: { hash?: string }): Promise<KeyVerification> {
    if (key.length !== KEY_LENGTH) return malformed(checkKeyShape(key) ?? 'length');
    const hash = hashOf(key, creds);
    const known = this.cached(key, hash);
    if (known !== undefined) return known;
    if (this.staleMs === 0) return this.judge(await this.load(hash, key), this.now());
    if (this.unavailableUntil > this.now()) {
      const stale = this.staleEntry(hash);
      if (stale !== undefined) return this.judge(stale, this.now());
    }
    try {
      return this.judge(await this.load(hash, key), this.now());
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      this.unavailableUntil = this.now() + UNAVAILABLE_BREAKER_MS;
      const stale = this.staleEntry(hash);
      if (stale === undefined) throw err;
      return this.judge(stale, this.now());
    }
  }

  /** A key's answer past its TTL but within the stale bound; undefined when there is none (or only a miss). */
  private staleEntry(hash: string): (CacheEntry & { principal: Principal }) | undefined {
    const entry = this.cache.get(hash);
    if (entry === undefined || 'miss' in entry || this.now() >= entry.until + this.staleMs) return undefined;
    return entry;
  }

  private cached(key: string, hash: string): KeyVerification | undefined {
    const now = this.now();
    let entry = this.cache.get(hash);
    if (entry !== undefined && entry.until <= now) {
      // Past its TTL: looked up again. A key's answer (not a miss) stays in the cache, unused, for the
      // stale bound, in case that lookup finds the database unavailable; an invalidation still removes it.
      if ('miss' in entry || now >= entry.until + this.staleMs) this.cache.delete(hash);
      entry = undefined;
    }
    // A cached identity was found by this very hash, so the key is well formed: the checksum is only
    // worth computing for keys that would otherwise cost a lookup.
    if (entry !== undefined && !('miss' in entry)) return this.judge(entry, now);
    const shape = checkKeyShape(key);
    if (shape !== null) return malformed(shape);
    return entry === undefined ? undefined : this.judge(entry, now);
  }

  private judge(entry: CacheEntry, now: number): KeyVerification {
    if ('miss' in entry) return entry.inactive ? OWNER_INACTIVE : UNKNOWN;
    if (entry.revokedAt !== null && entry.revokedAt <= now) return REVOKED;
    if (entry.expiresAt !== null && entry.expiresAt <= now) return EXPIRED;
    if (now - entry.usedAt >= LAST_USED_RESOLUTION_MS && entry.principal.keyId) {
      entry.usedAt = now;
      this.lastUsed.record(entry.principal.keyId, now);
    }
    return entry.ok;
  }

  private load(hash: string, key: string): Promise<CacheEntry> {
    const running = this.inflight.get(hash);
    if (running) return running;
    const generation = this.generation;
    const source = this.sources.get(key.slice(0, 3));
    const p = (source ? this.fetchFrom(source, hash) : this.fetch(hash))
      .then((entry) => {
        // An invalidation that raced this lookup wins: do not cache what may be stale.
        if (generation === this.generation) {
          this.cache.set(hash, entry);
        }
        return entry;
      })
      .finally(() => this.inflight.delete(hash));
    this.inflight.set(hash, p);
    return p;
  }

  private miss(): CacheEntry {
    return { miss: true, until: this.now() + Math.max(1, this.options.negativeTtlMs) };
  }

  private async fetchFrom(source: CredentialSource, hash: string): Promise<CacheEntry> {
    const found = await source(hash);
    if (!found) return this.miss();
    const { principal, revokedAt, expiresAt } = found;
    return { principal, ok: { ok: true, principal }, revokedAt, expiresAt, until: this.now() + Math.max(1, this.options.ttlMs), usedAt: -Infinity };
  }

  private async fetch(hash: string): Promise<CacheEntry> {
    const row = await this.repo.findByHash(hash);
    const miss = (): CacheEntry => this.miss();
    if (!row) return miss();
    const loader = this.loaders.get(row.owner_type);
    const principal = loader ? await loader(row) : null;
    if (principal === 'inactive') return { ...miss(), inactive: true };
    if (!principal) return miss();
    return {
      principal,
      ok: { ok: true, principal },
      revokedAt: row.revoked_at ? Date.parse(row.revoked_at) : null,
      expiresAt: row.expires_at ? Date.parse(row.expires_at) : null,
      until: this.now() + Math.max(1, this.options.ttlMs),
      usedAt: -Infinity,
    };
  }

  get size(): number {
    return this.cache.size;
  }
}
