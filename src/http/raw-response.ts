// Answers written by the lean handlers, straight on node:http (no Express): the
// error shape, the request id and the headers are the same as the Express side's.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRelayed } from './client-ip.ts';
import { pathOf } from './server.ts';
import type { TrustedProxies } from './client-ip.ts';
import { AppError } from '../errors/app-error.ts';
import { SCIM_CHALLENGE, SCIM_CONTENT_TYPE, clientErrorOf, errorJson, graphqlErrorJson, httpHeadersOf, httpStatusOf, isGraphqlPath, isOidcPath, isScimPath, oauthErrorJson, scimErrorJson } from './errors.ts';

/** A request id trackgate takes from a trusted proxy: bounded, and safe in logs, headers and pages. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The first value of a request header, read from the raw list: on the hot
 * paths this spares Node building the whole `req.headers` object.
 */
export function rawHeader(req: IncomingMessage, lowerName: string): string | undefined {
  const raw = req.rawHeaders;
  const n = lowerName.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === n && (name === lowerName || name.toLowerCase() === lowerName)) return raw[i + 1];
  }
  return undefined;
}

// A request id has the form of a random UUID: its first 20 hex digits (74 random bits, besides the
// version and variant) are drawn once per process, the last 12 count requests. Unique without a draw from the random pool per request (randomUUID showed in the
// proxy's profile); request ids are labels for the logs, not secrets.
const ID_PREFIX = randomUUID().slice(0, 24);
let idCounter = Math.floor(Math.random() * 2 ** 32);

/** A new request id (UUID-shaped, unique within the process and, with overwhelming odds, across processes). */
export function newRequestId(): string {
  idCounter = idCounter === 0xffffffffffff ? 0 : idCounter + 1;
  return ID_PREFIX + idCounter.toString(16).padStart(12, '0');
}

/**
 * The request's id, the one rule for every plane: the X-Request-Id of a trusted proxy
 * (TRACKGATE_TRUSTED_PROXIES) when it is well-formed, or the one the main isolate chose for a
 * request it relayed to the management worker; otherwise a new one. A client's own id is never
 * taken: it is stored in audit events, where it could pass for another request's. Without the
 * list of trusted proxies, no peer is one.
 */
export function requestIdOf(req: IncomingMessage, trustedProxies?: TrustedProxies): string {
  const given = rawHeader(req, 'x-request-id');
  if (given !== undefined && REQUEST_ID.test(given) && (isRelayed(req) || trustedProxies?.trusts(req.socket.remoteAddress) === true)) return given;
  return newRequestId();
}

/**
 * Writes an error the way every trackgate endpoint does:
 * `{"error":{"code","message","request_id"}}`, with the status and headers
 * (WWW-Authenticate, Retry-After) of src/http/errors.ts. Anything that is not
 * an AppError is a generic 500 that shows nothing of its cause. When the
 * request body was not read, the connection is closed afterwards rather than
 * draining an upload nobody wants.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, requestId: string, extraHeaders?: Record<string, string>): void {
  const app = clientErrorOf(err) ?? new AppError('internal_error', 'internal error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeErrorJson(req, res, app, requestId, extraHeaders, !req.complete && hasRequestBody(req));
}

/**
 * The one JSON error answer, for the lean handlers (sendError) and Express's error handler alike: the
 * API's shape, SCIM's under /scim, RFC 6749's under /oidc.
 * `closeUnread`: the request body was not read and nobody will, so the connection is not kept.
 */
export function writeErrorJson(req: IncomingMessage, res: ServerResponse, err: AppError, requestId: string, extraHeaders: Record<string, string> | undefined, closeUnread: boolean): void {
  // SCIM clients (an IdP) read RFC 7644's error shape only: every error under /scim, from the main isolate
  // (a body too large, a restarting worker) or from Express (a route, the body parser, an unknown path).
  const path = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  const scim = isScimPath(path);
  // OAuth clients (the tracking client's token exchange) read RFC 6749's shape: `error` is what they act on.
  const body = scim ? scimErrorJson(err) : isOidcPath(path) ? oauthErrorJson(err) : isGraphqlPath(pathOf(path)) ? graphqlErrorJson(err, requestId) : errorJson(err, requestId);
  const challenge = scim && err.challenge ? { 'WWW-Authenticate': SCIM_CHALLENGE } : undefined;
  const headers: Record<string, string | number> = {
    ...httpHeadersOf(err),
    ...challenge,
    ...extraHeaders,
    'Content-Type': scim ? SCIM_CONTENT_TYPE : 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
  };
  if (closeUnread) {
    headers.Connection = 'close';
    res.shouldKeepAlive = false;
  }
  res.writeHead(httpStatusOf(err), headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Whether the request announces a body (a non-zero Content-Length or any Transfer-Encoding). */
export function hasRequestBody(req: IncomingMessage): boolean {
  const cl = rawHeader(req, 'content-length');
  if (cl !== undefined) return cl !== '0';
  return rawHeader(req, 'transfer-encoding') !== undefined;
}

const ALLOW_GET = { Allow: 'GET, HEAD' };

/**
 * GET and HEAD only; anything else is answered 405 here, under the request id of the one rule
 * (requestIdOf: a trusted proxy's is kept). The id is looked up only on the 405: a GET allocates nothing.
 */
export function onlyGetOrHead(req: IncomingMessage, res: ServerResponse, trustedProxies: TrustedProxies | undefined): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  sendError(req, res, new AppError('method_not_allowed', `${req.method} is not allowed here: use GET`), requestIdOf(req, trustedProxies), ALLOW_GET);
  return false;
}

/** A complete answer from a lean handler (one that Express never sees), not cached, no MIME sniffing. */
export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: string, contentType = 'application/json; charset=utf-8'): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
