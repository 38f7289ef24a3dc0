import type { IncomingMessage } from 'node:http';

export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A request from a person's browser (it asks for HTML), as opposed to an API client. */
export function isBrowser(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/**
 * CSRF check for state changes authenticated by the session cookie: the
 * request must say it comes from trackgate's own origin (Origin, else
 * Sec-Fetch-Site, else Referer). No header at all is refused.
 */
export function isSameOrigin(req: IncomingMessage, publicOrigin: string): boolean {
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== '') return origin === publicOrigin;
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
