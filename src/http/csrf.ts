import type { IncomingMessage } from 'node:http';
import { equalSecrets } from '../crypto/equal-secrets.ts';
import { newToken } from '../crypto/tokens.ts';
import { html } from '../html/html.ts';
import type { Html } from '../html/html.ts';

/**
 * Cross-site request forgery: the one home of the rule for state changes
 * authenticated by the session cookie (docs/SECURITY.md, "CSRF").
 *
 * - Express routes (the management API, the pages, /logout) require the
 *   session's synchronizer token: made at login, kept in the session, sent
 *   back as the X-CSRF-Token header or, by a form, the csrf_token field.
 * - The data plane (forward auth, the proxy) is not Express and forwards
 *   requests whose bodies it never reads, so no token can travel: there the
 *   request must say it comes from trackgate's own origin (isSameOrigin).
 *
 * Safe methods (RFC 9110 §9.2.1: GET, HEAD, OPTIONS) change nothing and need
 * neither. The login forms, shown before any session exists, use
 * src/http/login-form-token.ts's LoginFormToken (a double-submit cookie) instead.
 */

/** Methods that change nothing, for every CSRF decision (a Set: the data plane looks it up per request). */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The form field that carries the session's token (the header is X-CSRF-Token). */
export const CSRF_FIELD = 'csrf_token';

/** The hidden CSRF field every state-changing signed-in form carries. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

/** A new session token, made at login (SessionManager.establish). */
export function newCsrfToken(): string {
  return newToken(24);
}

/** The request carries `expected` (the session's token) in X-CSRF-Token, or else in the posted form field. */
export function carriesCsrfToken(req: IncomingMessage, expected: string | undefined, formToken?: unknown): boolean {
  const header = req.headers['x-csrf-token'];
  const given = typeof header === 'string' ? header : typeof formToken === 'string' ? formToken : '';
  if (!expected || !given) return false;
  return equalSecrets(expected, given);
}

/** Checks a cookie-authenticated state-changing Express request (the management API's requireAuth). */
export interface CsrfVerifier {
  /** True when a cookie-authenticated state-changing request carries a valid CSRF token. */
  verify(req: IncomingMessage): boolean;
}

/**
 * Whether a request comes from trackgate's own origin (Origin, else
 * Sec-Fetch-Site, else Referer). No header at all is refused.
 *
 * - The data plane, where no token can be sent, asks this of every
 *   state-changing request.
 * - `navigation`: a GET /login that would start a login (login CSRF,
 *   src/sso/login.routes.ts). A navigation carries no Origin, so only
 *   `Sec-Fetch-Site: same-origin` (`none` is a typed URL, a bookmark, or a
 *   link opened from a mail or chat app, which an attacker can send too;
 *   `same-site` is a sibling subdomain), and without Sec-Fetch-Site (a
 *   browser older than 2023, or not a browser) a Referer of this origin. A
 *   request with neither is not trusted: an old browser on an attacker's page
 *   with `referrerpolicy="no-referrer"` sends neither, and a person behind it
 *   loses only one click on the Continue page.
 */
export function isSameOrigin(req: IncomingMessage, publicOrigin: string, options?: { navigation: boolean }): boolean {
  if (options?.navigation !== true) {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && origin !== '') return origin === publicOrigin;
  }
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== '') return site === 'same-origin';
  const referer = req.headers.referer;
  if (typeof referer === 'string' && referer !== '') {
    try {
      return new URL(referer).origin === publicOrigin;
    } catch {
      return false;
    }
  }
  return false;
}
