import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { JWK } from 'jose';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Logger } from '../log/logger.ts';
import type { SigningKeyRow, SigningKeysRepository } from './signing-keys.repository.ts';

export const SEAL_PURPOSE = 'assertion-signing-key';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface SigningKey {
  kid: string;
  alg: 'ES256';
  privateKey: KeyObject;
  publicJwk: JWK;
  activatesAt: number;
  expiresAt: number | null;
}

export interface SigningKeyOptions {
  /** Age of the signing key after which a successor is made (0 = never rotate on its own). */
  rotationMs: number;
  /** How long a successor is published in the JWKS before it signs anything, so that verifiers can pick it up. */
  prepublishMs?: number;
  /** How long a retired key stays in the JWKS after its successor took over. */
  overlapMs?: number;
  /** How often the key set is re-read from the database (other instances may have rotated). */
  reloadMs?: number;
}

/**
 * The ES256 keys that sign identity assertions. Generated on first start,
 * stored with the private half sealed by the SecretBox, and rotated with an
 * overlap on both sides: a successor is published before it signs (a verifier
 * holding the key set from before the rotation keeps working), and the
 * retired key stays published after (assertions it signed stay verifiable).
 *
 * The JWKS therefore holds the current key plus the previous one, and for
 * the prepublication window also the next.
 */
export class SigningKeyService {
  private keys: SigningKey[] = [];
  private signing: SigningKey | null = null;
  private jwksBody: Buffer = Buffer.from('{"keys":[]}');
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: Array<() => void> = [];
  private readonly prepublishMs: number;
  private readonly overlapMs: number;
  private readonly reloadMs: number;
  private refreshing: Promise<void> | null = null;
  /** When a prepublished key starts signing; checked on use so the switch does not wait for a reload. */
  private nextActivation: number | null = null;

  constructor(
    private readonly repo: SigningKeysRepository,
    private readonly box: SecretBox,
    private readonly options: SigningKeyOptions,
    private readonly logger: Logger | null = null,
    private readonly now: () => number = Date.now,
  ) {
    this.prepublishMs = options.prepublishMs ?? HOUR;
    this.overlapMs = options.overlapMs ?? DAY;
    this.reloadMs = options.reloadMs ?? 60_000;
  }

  /** Loads the keys, making the first one when there is none; then re-checks them periodically. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.timer || this.reloadMs <= 0) return;
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.logger?.warn({ err }, 'could not refresh the assertion signing keys'));
    }, this.reloadMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Called after the signing key or the published set changed. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The key that signs now. Throws before start(). */
  current(): SigningKey {
    if (this.nextActivation !== null && this.now() >= this.nextActivation) this.pickSigning(this.now());
    if (!this.signing) throw new Error('assertion signing keys are not loaded: call start() first');
    return this.signing;
  }

  /** The serialized JWKS (public keys only), made once per change. */
  jwksJson(): Buffer {
    return this.jwksBody;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /**
   * Re-reads the key set, makes the first key or a successor when one is due,
   * and retires keys that a successor has replaced.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /**
   * Makes a successor now. `immediate` makes it sign at once (a suspected
   * compromise: verifiers with a cached key set refetch on the unknown kid);
   * otherwise it is prepublished first, like a scheduled rotation.
   */
  async rotate(options: { immediate?: boolean } = {}): Promise<string> {
    const now = this.now();
    const kid = await this.create(options.immediate ? now : now + this.prepublishMs);
    await this.doRefresh();
    return kid;
  }

  private async doRefresh(): Promise<void> {
    const now = this.now();
    let rows = await this.repo.listLive(iso(now));
    if (!rows.some((r) => Date.parse(r.activates_at) <= now)) {
      // First start (or every key expired): a key that signs at once.
      await this.create(now);
      rows = await this.repo.listLive(iso(now));
    }
    const active = rows.filter((r) => Date.parse(r.activates_at) <= now);
    const signingRow = active.at(-1);
    if (!signingRow) throw new Error('assertion signing keys: no active key after creating one');
    const pending = rows.filter((r) => Date.parse(r.activates_at) > now);
    if (this.options.rotationMs > 0 && pending.length === 0 && Date.parse(signingRow.activates_at) + this.options.rotationMs <= now) {
      await this.create(now + this.prepublishMs);
      this.logger?.info('assertion signing key rotation: successor published');
      rows = await this.repo.listLive(iso(now));
    }
    // Every active key older than the signing one was replaced when its successor activated.
    const signingActivates = Date.parse(signingRow.activates_at);
    for (const r of active) {
      if (r === signingRow || r.expires_at !== null) continue;
      const expires = iso(signingActivates + this.overlapMs);
      await this.repo.setExpiry(r.id, expires);
      r.expires_at = expires;
    }
    await this.repo.deleteExpiredBefore(iso(now - 30 * DAY));
    this.install(rows.filter((r) => r.expires_at === null || Date.parse(r.expires_at) > now), now);
  }

  private install(rows: SigningKeyRow[], now: number): void {
    const previous = this.signing?.kid ?? null;
    const previousSet = this.keys.map((k) => k.kid).join(',');
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    this.keys = rows.map((r) => {
      const existing = known.get(r.id);
      const expiresAt = r.expires_at ? Date.parse(r.expires_at) : null;
      if (existing) return { ...existing, expiresAt };
      const privateJwk = JSON.parse(this.box.decrypt(SEAL_PURPOSE, r.private_jwk_sealed)) as JWK;
      return {
        kid: r.id,
        alg: 'ES256' as const,
        privateKey: createPrivateKey({ key: privateJwk as JsonWebKey, format: 'jwk' }),
        publicJwk: JSON.parse(r.public_jwk) as JWK,
        activatesAt: Date.parse(r.activates_at),
        expiresAt,
      };
    });
    this.jwksBody = Buffer.from(JSON.stringify(this.jwks()));
    this.pickSigning(now);
    if (previous !== this.signing?.kid || previousSet !== this.keys.map((k) => k.kid).join(',')) {
      for (const l of this.listeners) l();
    }
  }

  private pickSigning(now: number): void {
    const before = this.signing;
    let signing: SigningKey | null = null;
    let next: number | null = null;
    for (const k of this.keys) {
      if (k.activatesAt <= now) {
        if (!signing || k.activatesAt >= signing.activatesAt) signing = k;
      } else if (next === null || k.activatesAt < next) {
        next = k.activatesAt;
      }
    }
    this.signing = signing;
    this.nextActivation = next;
    if (before && signing && before !== signing && before.kid !== signing.kid) {
      for (const l of this.listeners) l();
    }
  }

  private async create(activatesAt: number): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKey.export({ format: 'jwk' }) as JWK;
    // A prefix of the RFC 7638 thumbprint: unique among a handful of keys, and every byte travels in each assertion.
    const kid = (await calculateJwkThumbprint(pub, 'sha256')).slice(0, 16);
    const publicJwk: JWK = { kty: pub.kty, crv: pub.crv, x: pub.x, y: pub.y, kid, alg: 'ES256', use: 'sig' };
    await this.repo.insert({
      id: kid,
      alg: 'ES256',
      public_jwk: JSON.stringify(publicJwk),
      private_jwk_sealed: this.box.encrypt(SEAL_PURPOSE, JSON.stringify(privateKey.export({ format: 'jwk' }))),
      created_at: iso(this.now()),
      activates_at: iso(activatesAt),
      expires_at: null,
    });
    return kid;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
