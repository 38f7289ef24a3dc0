import type { Request } from 'express';
import type { SecretBox } from '../crypto/secret-box.ts';

/** A new API key, to be shown on exactly one page view after the POST that made it. */
export interface NewKeyFlash {
  key: string;
  key_id: string;
  name: string;
  expires_at: string | null;
  /** "personal", or the service account's username. */
  owner: string;
}

export interface SsoTestFlash {
  id: string;
  ok: boolean;
  issuer: string;
  problems: Array<{ field: string; code: string; message: string }>;
  discovered_issuer: string | null;
  signing_algorithms: string[];
}

/** A new SCIM token, to be shown on exactly one view of /admin after the POST that made it. */
export interface NewScimTokenFlash {
  token: string;
  token_id: string;
  name: string;
}

export interface Flash {
  notice?: string;
  error?: string;
  newKey?: NewKeyFlash;
  ssoTest?: SsoTestFlash;
  newScimToken?: NewScimTokenFlash;
}

const PURPOSE = 'web-flash';
/** A message nobody came back for within this long is dropped unseen (a key in it never shows). */
const MAX_AGE_MS = 5 * 60_000;

/**
 * Post/redirect/get needs the POST's outcome on the next GET. It travels in
 * the session (express-session saves it with the response), sealed with the
 * SecretBox so that a new key is never readable in the session store, and it
 * is deleted by the first page that reads it.
 */
export class FlashStore {
  constructor(private readonly box: SecretBox) {}

  set(req: Request, flash: Flash): void {
    req.session.flash = this.box.encrypt(PURPOSE, JSON.stringify({ at: Date.now(), flash }));
  }

  take(req: Request): Flash | null {
    // No req.session on a route without the session middleware, or while express-session's store is disconnected.
    const sealed = (req.session as Request['session'] | undefined)?.flash;
    if (!sealed) return null;
    delete req.session.flash;
    try {
      const { at, flash } = JSON.parse(this.box.decrypt(PURPOSE, sealed)) as { at: number; flash: Flash };
      return Date.now() - at <= MAX_AGE_MS ? flash : null;
    } catch {
      return null;
    }
  }
}
