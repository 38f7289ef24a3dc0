import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether a secret a client sent equals the one we hold, in time that does not
 * depend on where they differ. Both sides are hashed first: timingSafeEqual
 * needs equal lengths, and comparing digests does not reveal the secret's length.
 * The one constant-time comparison of the house (CSRF tokens, form tokens).
 */
export function equalSecrets(held: string, given: string): boolean {
  return timingSafeEqual(createHash('sha256').update(held).digest(), createHash('sha256').update(given).digest());
}
