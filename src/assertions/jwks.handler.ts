import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrustedProxies } from '../http/client-ip.ts';
import { onlyGetOrHead } from '../http/raw-response.ts';
import type { SigningKeyService } from './signing-keys.service.ts';

/**
 * `GET /.well-known/jwks.json`: the public keys of the identity assertions,
 * served on the lean path from a body serialized once per key change.
 */
export function createJwksHandler(keys: SigningKeyService, trustedProxies?: TrustedProxies): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!onlyGetOrHead(req, res, trustedProxies)) return;
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
