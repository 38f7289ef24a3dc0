import type { SecretBox } from '../crypto/secret-box.ts';
import { SecretKeyMismatchError } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import type { SigningKeysRepository } from '../assertions/signing-keys.repository.ts';
import { SEAL_PURPOSE } from '../assertions/signing-keys.service.ts';
import type { SsoRepository } from '../sso/sso.repository.ts';
import { CLIENT_SECRET_PURPOSE } from '../sso/sso.service.ts';

export interface ResealRepos {
  signingKeys: SigningKeysRepository;
  sso: SsoRepository;
}

/** The rotation cannot be done as asked; nothing was changed (the transaction rolled back). */
export class ResealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResealError';
  }
}

export interface ResealResult {
  /** Re-sealed from the old key to the new one. */
  resealed: number;
  /** Already sealed with the new key (a rotation run twice, or interrupted): left as they are. */
  alreadyNew: number;
}

/**
 * `trackgate rotate-secret-key`: re-seals every secret the database holds (the assertion signing keys'
 * private halves, SSO client secrets) from the old secret key to the new one, in one transaction, so that
 * a failure leaves everything under the old key. A value that opens with neither key stops it: the old key
 * given is not the one that sealed it. Idempotent: what already opens with the new key is left alone.
 *
 * Not re-sealed, because they are short-lived and re-made: browser sessions and their CSRF tokens (signed
 * with keys derived from the secret key: everyone signs in again) and pending SSO logins (their PKCE
 * verifiers: a login in progress is started again).
 */
export async function resealSecrets(store: Store<ResealRepos>, from: SecretBox, to: SecretBox): Promise<ResealResult> {
  return store.transaction(async (repos) => {
    const result: ResealResult = { resealed: 0, alreadyNew: 0 };
    const reseal = async (purpose: string, sealed: string, save: (v: string) => Promise<void>) => {
      let plain: string;
      try {
        plain = from.decrypt(purpose, sealed);
      } catch (err) {
        if (!(err instanceof SecretKeyMismatchError)) throw err;
        try {
          to.decrypt(purpose, sealed);
        } catch {
          throw new ResealError('a sealed secret opens with neither the old key given nor the current one: the old key is not the one that sealed this database. Nothing was changed');
        }
        result.alreadyNew++;
        return;
      }
      await save(to.encrypt(purpose, plain));
      result.resealed++;
    };
    for (const k of await repos.signingKeys.listSealed()) await reseal(SEAL_PURPOSE, k.sealed, (v) => repos.signingKeys.setSealed(k.id, v));
    for (const c of await repos.sso.listSealedClientSecrets()) await reseal(CLIENT_SECRET_PURPOSE, c.sealed, (v) => repos.sso.setSealedClientSecret(c.id, v));
    return result;
  });
}
