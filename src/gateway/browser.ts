import type { IncomingMessage } from 'node:http';

/** A request from a person's browser (it asks for HTML), as opposed to an API client. */
export function isBrowser(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}
