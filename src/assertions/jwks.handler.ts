import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SigningKeyService } from './signing-keys.service.ts';

/**
 * `GET /.well-known/jwks.json`: the public keys of the identity assertions,
 * served on the lean path from a body serialized once per key change.
 */
export function createJwksHandler(keys: SigningKeyService): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const body = JSON.stringify({ error: { code: 'method_not_allowed', message: `${req.method} is not allowed on this path; use GET` } });
      res.writeHead(405, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Allow: 'GET, HEAD' });
      res.end(body);
      return;
    }
    const body = keys.jwksJson();
    res.writeHead(200, {
      'Content-Type': 'application/jwk-set+json',
      'Content-Length': body.length,
      // Short enough that a verifier sees a prepublished successor long before it signs anything.
      'Cache-Control': 'public, max-age=300',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
