import { createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { errors } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';

/** Of src/sso's IdpFetcher, the one call made here (bounded, JSON only, public addresses only). */
export interface ScannerKeysFetcher {
  fetch(kind: 'scanner_keys', url: string): Promise<Response>;
}

export interface ScannerKeysOptions {
  /** Where the scanner publishes its keys (`{"public_keys":[{"key_identifier","key","is_current"}]}`). */
  url: string;
  /** Keys are fetched again when older than this. */
  maxAgeMs?: number;
  /** An unknown key identifier fetches the keys again only this long after the last fetch (a random identifier cannot make trackgate fetch on every report). */
  cooldownMs?: number;
  now?: () => number;
}

const HOUR_MS = 3600_000;
const MINUTE_MS = 60_000;
/** A scanner publishes a handful of keys; a document with more is not read past this many. */
const MAX_KEYS = 50;

/** Why a report's signature was refused (for the log; the caller hears only "invalid signature"). */
export type SignatureProblem = 'unknown_key' | 'bad_signature';

/**
 * A secret scanner's public keys (GitHub's secret scanning partner program), fetched from its URL and
 * cached, and the check of a report's signature: ECDSA over SHA-256 of the raw body, the signature in
 * base64 DER. The URL failing to answer is the scanner's dependency down (503), never a refusal (401).
 */
export class ScannerKeys {
  private keys: Map<string, KeyObject> | null = null;
  private fetchedAt = 0;
  private inflight: Promise<Map<string, KeyObject>> | null = null;
  /**
   * The last failed fetch and its error, answered again for the cooldown: anyone can send a report with
   * made-up signature headers, and while the URL fails each would otherwise fetch it again.
   */
  private failed: { at: number; error: Error } | null = null;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;

  constructor(
    private readonly fetcher: ScannerKeysFetcher,
    private readonly options: ScannerKeysOptions,
    private readonly logger?: Logger,
  ) {
    this.maxAgeMs = options.maxAgeMs ?? HOUR_MS;
    this.cooldownMs = options.cooldownMs ?? MINUTE_MS;
    this.now = options.now ?? Date.now;
  }

  /** null when the body was signed by the named key of the scanner; else why not. Throws 503 when the keys cannot be had. */
  async check(body: Buffer, keyId: string, signature: string): Promise<SignatureProblem | null> {
    const key = await this.key(keyId);
    if (!key) return 'unknown_key';
    try {
      return verify('sha256', body, key, Buffer.from(signature, 'base64')) ? null : 'bad_signature';
    } catch {
      // A signature that is not DER at all, or a key that cannot verify: not signed by the scanner.
      return 'bad_signature';
    }
  }

  private async key(keyId: string): Promise<KeyObject | null> {
    const cached = this.keys !== null && this.now() - this.fetchedAt < this.maxAgeMs ? this.keys : null;
    let keys = cached ?? (await this.refresh());
    // A key the scanner added since the last fetch (a rotation): fetched again, but not more often than the cooldown.
    if (!keys.has(keyId) && cached && this.now() - this.fetchedAt >= this.cooldownMs) keys = await this.refresh();
    return keys.get(keyId) ?? null;
  }

  /** One fetch at a time; concurrent reports wait for the same one. */
  private refresh(): Promise<Map<string, KeyObject>> {
    if (this.failed && this.now() - this.failed.at < this.cooldownMs) return Promise.reject(this.failed.error);
    this.inflight ??= this.load().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async load(): Promise<Map<string, KeyObject>> {
    const what = "the secret scanner's list of public keys";
    let doc: unknown;
    try {
      const res = await this.fetcher.fetch('scanner_keys', this.options.url);
      if (res.status !== 200) throw new Error(`answered HTTP ${res.status}`);
      doc = await res.json();
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message, url: this.options.url }, 'secret scanning: the scanner\'s public keys could not be fetched');
      throw this.fail(errors.unavailable(what, err));
    }
    const list = (doc as { public_keys?: unknown } | null)?.public_keys;
    if (!Array.isArray(list)) {
      this.logger?.warn({ url: this.options.url }, 'secret scanning: the scanner\'s keys document has no public_keys list');
      throw this.fail(errors.unavailable(what));
    }
    const keys = new Map<string, KeyObject>();
    for (const entry of list.slice(0, MAX_KEYS) as unknown[]) {
      const { key_identifier: id, key: pem } = (entry ?? {}) as { key_identifier?: unknown; key?: unknown };
      if (typeof id !== 'string' || typeof pem !== 'string') continue;
      try {
        const k = createPublicKey(pem);
        // The program signs with ECDSA; a key of another type cannot have signed a report.
        if (k.asymmetricKeyType === 'ec') keys.set(id, k);
      } catch {
        this.logger?.warn({ key_identifier: id }, 'secret scanning: a published key is not a PEM public key; ignored');
      }
    }
    this.keys = keys;
    this.fetchedAt = this.now();
    this.failed = null;
    return keys;
  }

  private fail(error: Error): Error {
    this.failed = { at: this.now(), error };
    return error;
  }
}
