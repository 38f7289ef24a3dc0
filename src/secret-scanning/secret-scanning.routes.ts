import type { ApiRouter } from '../http/api-router.ts';
import type { SecretScanningService } from './secret-scanning.service.ts';
import { leakedCredentialsOut, reportResultsOut } from './secret-scanning.responses.ts';
import { SECRET_SCANNING_REPORTS_PATH, SIGNATURE_HEADERS } from './signature-headers.ts';

/** The secret scanner's report endpoint (signed, no credential) and the caller's own leaked-credential notices. */
export function registerSecretScanningRoutes(api: ApiRouter, scanning: SecretScanningService): void {
  api.add(
    {
      method: 'post',
      path: SECRET_SCANNING_REPORTS_PATH,
      summary:
        "A secret scanner's report of tokens found public (GitHub's secret scanning partner program): a JSON array of {token, type, url, source}, signed with ECDSA over the raw body (Github-Public-Key-Identifier, Github-Public-Key-Signature). Every live trackgate credential in it is revoked at once.",
      tag: 'secret scanning',
      auth: 'none',
      responses: {
        200: { description: "each token's verdict, in the report's order", schema: reportResultsOut },
        400: { description: 'the body is not an array of at most 1000 {token, type, url, source}' },
        401: { description: 'invalid_signature: not signed by one of the scanner\'s published keys; nothing was revoked' },
        404: { description: 'secret scanning is off (TRACKGATE_SECRET_SCANNING_KEYS_URL=off)' },
        503: { description: "the scanner's public keys (or the database) cannot be reached; nothing was revoked" },
      },
    },
    async ({ req, res }) => {
      // The raw bytes (createExpressApp's rawBodies): the signature is over them, not over a re-serialized parse.
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const results = await scanning.report({ body, keyId: req.get(SIGNATURE_HEADERS.keyId), signature: req.get(SIGNATURE_HEADERS.signature), ip: res.locals.clientIp, requestId: res.locals.requestId });
      return { status: 200, body: results };
    },
  );
  api.add(
    {
      method: 'get',
      path: '/me/leaked-credentials',
      summary: "The caller's credentials a secret scanner reported public (and trackgate revoked), until dismissed on the settings page",
      tag: 'me',
      auth: 'required',
      responses: { 200: { description: 'notices, newest first', schema: leakedCredentialsOut } },
    },
    async ({ actor }) => ({ status: 200, body: { leaked_credentials: await scanning.listMine(actor) } }),
  );
}
