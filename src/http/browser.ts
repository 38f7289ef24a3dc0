import type { IncomingMessage } from 'node:http';

/*
 * "Is this a browser?" is three different questions, each answered where it
 * is asked, and named for what it decides:
 * - asksForHtml (here): answer a missing login with a redirect to /login
 *   rather than 401 (the data plane). Only a request asking for HTML can
 *   follow a redirect to a page; a page's own fetch() gets the 401.
 * - prefersJson (here): /logout answers 204 rather than redirecting, for a
 *   script that asked for JSON and not HTML.
 * - ssoOnlyRefusal (src/auth/authenticator.ts): under "require SSO", a
 *   person's API key is refused in ANY request a browser sends, a page's
 *   fetch() included (Sec-Fetch-Dest), not only in those asking for HTML. A
 *   policy of the Authenticator (domain), so it stays there.
 */

/** The request asks for HTML: a person's navigation, which can follow a redirect to the login page. */
export function asksForHtml(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** The request asks for JSON and not for HTML: a script, answered without a redirect. */
export function prefersJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}
