import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ACCESS_TOKEN_PREFIX } from '../auth/credentials.ts';
import { hashSecret } from '../crypto/tokens.ts';

/**
 * API key format: `<prefix>-<40 base62 characters>` = 34 random characters
 * (~202 bits) followed by the 6-character base62 CRC32 of those 34. The shape
 * passes every version of the tracking client's key check (the part after the
 * last dash is exactly 40 characters of [A-Za-z0-9]), lets secret scanners
 * recognise a key, and lets the gateway reject garbage without a lookup.
 */
export const KEY_PREFIXES = { user: 'tgp', service_account: 'tgs' } as const;
export type KeyKind = keyof typeof KEY_PREFIXES;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 34;
const CHECKSUM_LENGTH = 6;
export const SECRET_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH;
/** Length of a whole key: three-letter prefix, dash, secret. */
export const KEY_LENGTH = 4 + SECRET_LENGTH;
/** Characters of the secret shown in the key ID: enough to tell keys apart, far too few to matter. */
const KEY_ID_CHARS = 6;

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
      if (byte < 248) out += ALPHABET.charAt(byte % 62);
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(random: string): string {
  let n = crc32(random);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET.charAt(n % 62) + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export interface GeneratedKey {
  key: string;
  keyId: string;
  hash: string;
}

export function generateKey(kind: KeyKind): GeneratedKey {
  return generateSecretToken(KEY_PREFIXES[kind]);
}

/**
 * Credentials that are not API keys but are made the same way (a SCIM token: `tgscim-…`): a prefix of
 * their own, so that an API key check refuses them by shape and a secret scanner tells them apart.
 */
export const CREDENTIAL_PREFIXES = { scim: 'tgscim', access_token: ACCESS_TOKEN_PREFIX } as const;

/**
 * The three-letter prefixes the hot path's verifier takes (src/keys/key-verifier.ts): API keys, and the
 * access tokens workload federation issues (src/federation), which are made and checked like keys so that
 * they go through the same cache, revocation and invalidation with the same cost.
 */
export const VERIFIED_PREFIXES: ReadonlySet<string> = new Set([KEY_PREFIXES.user, KEY_PREFIXES.service_account, CREDENTIAL_PREFIXES.access_token]);


/** `<prefix>-<34 random base62><6 checksum>`, its ID (prefix and first characters) and its SHA-256 (hex). */
export function generateSecretToken(prefix: string): GeneratedKey {
  const random = randomBase62(RANDOM_LENGTH);
  const key = `${prefix}-${random}${checksum(random)}`;
  return { key, keyId: `${prefix}-${random.slice(0, KEY_ID_CHARS)}`, hash: hashSecret(key, 'hex') };
}

/** Whether `token` has the shape and checksum generateSecretToken(prefix) gives: anything else is refused without a lookup. */
export function isSecretTokenShape(token: string, prefix: string): boolean {
  if (token.length !== prefix.length + 1 + SECRET_LENGTH || !token.startsWith(`${prefix}-`)) return false;
  for (let i = prefix.length + 1; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c >= 128 || DECODE[c] === -1) return false;
  }
  const random = token.slice(prefix.length + 1, prefix.length + 1 + RANDOM_LENGTH);
  return checksum(random) === token.slice(prefix.length + 1 + RANDOM_LENGTH);
}

export type KeyShapeProblem = 'prefix' | 'length' | 'alphabet' | 'checksum';

/**
 * Checks a presented key's shape and checksum; null when it is well formed.
 * Runs on every request before any lookup, so it allocates as little as it can.
 */
export function checkKeyShape(key: string): KeyShapeProblem | null {
  if (key.length !== 4 + SECRET_LENGTH || key.charCodeAt(3) !== 45 /* - */) {
    return key.indexOf('-') === -1 ? 'prefix' : 'length';
  }
  if (!VERIFIED_PREFIXES.has(key.slice(0, 3))) return 'prefix';
  for (let i = 4; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 128 || DECODE[c] === -1) return 'alphabet';
  }
  const random = key.slice(4, 4 + RANDOM_LENGTH);
  if (checksum(random) !== key.slice(4 + RANDOM_LENGTH)) return 'checksum';
  return null;
}

