import { hash, randomBytes } from 'node:crypto';

/**
 * Secret tokens and the hashes they are stored by: the one home of both.
 *
 * A token is `bytes` random bytes as base64url (no padding), so its length
 * follows from the byte count; tokenShape(bytes) is the check that matches
 * exactly the tokens newToken(bytes) makes, so the two cannot drift apart.
 */
export function newToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** The shape of newToken(bytes)'s tokens: anything else is refused without a lookup. */
export function tokenShape(bytes: number): RegExp {
  return new RegExp(`^[A-Za-z0-9_-]{${String(Math.ceil((bytes * 4) / 3))}}$`);
}

/**
 * How a stored hash is written. Each stored column keeps the encoding its
 * existing rows have, so the callers name it (not migrated):
 * - `hex`: api_keys.key_hash (and the failed-credential counts, which must
 *   match it), login_links.token_hash;
 * - `base64url`: login_transactions.state_hash and binding_hash (and their
 *   Redis copies), and the login link routes' in-memory failure pairs.
 */
export type SecretHashEncoding = 'hex' | 'base64url';

/**
 * SHA-256 of a secret: enough for high-entropy tokens and keys (no salt or
 * stretching needed, nothing to guess). Called directly on the API key hot
 * path (src/keys/key-verifier.ts): Node's one-shot hash (no Hash object per
 * call; Node >= 20.12, and package.json requires 20.19).
 */
export function hashSecret(value: string, encoding: SecretHashEncoding): string {
  return hash('sha256', value, encoding);
}
