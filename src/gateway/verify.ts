import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, errors, isUnavailable } from '../errors/app-error.ts';
import type { TrustedProxies } from '../http/client-ip.ts';
import type { Logger } from '../log/logger.ts';
import { asksForHtml } from '../http/browser.ts';
import { isSameOrigin, SAFE_METHODS } from '../http/csrf.ts';
import { forgedIdentityHeader } from './header-spelling.ts';
import type { GatewayIdentity, IdentityResult } from './identity.ts';
import { requestIdOf, sendError } from '../http/raw-response.ts';
import { loginPath } from '../http/return-to.ts';

export interface VerifyOptions {
  identity: GatewayIdentity;
  trustedProxies: TrustedProxies;
  /** trackgate's external URL: the origin a cookie-authenticated state change must come from. */
  publicUrl: string;
  logger?: Logger | null;
}

/**
 * `GET /auth/verify`: forward auth for nginx `auth_request`, Traefik
 * ForwardAuth and Envoy ext_authz. A lean handler: it never reads a body and
 * answers with headers only.
 *
 * - 200 with the identity headers (X-Trackgate-*) and the signed assertion;
 * - 401 with WWW-Authenticate for missing or bad credentials; a browser
 *   without credentials also gets `Location: /login?return_to=...`, the
 *   original URI taken from X-Original-URI / X-Forwarded-Uri only when the
 *   peer is a trusted proxy;
 * - 400 `forged_identity_header` for a header spelled with "_" or "." to pass
 *   for an identity header (the ingress would pass it on to the upstream);
 * - 403 for a known caller who is not allowed (failed attribution, a
 *   cross-site state change with the session cookie, judged as
 *   crossSiteStateChange says when nobody tells the original method);
 * - 429 while the client's address is blocked after repeated failures.
 *
 * The request being authorized is described either by a trusted proxy's
 * headers (X-Original-URI / X-Forwarded-Uri and X-Original-Method /
 * X-Forwarded-Method: nginx, Traefik) on `GET /auth/verify`, or by the check
 * request itself on `/auth/verify/<original path>`: Envoy's ext_authz
 * (`path_prefix: /auth/verify`) sends the original method and appends the
 * original path and query.
 */
export function createVerifyHandler(options: VerifyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { identity, trustedProxies, logger } = options;
  const publicOrigin = new URL(options.publicUrl).origin;

  const respond = (req: IncomingMessage, res: ServerResponse, result: IdentityResult, requestId: string): void => {
    if (!result.ok) {
      if (result.anonymous) {
        const extra = asksForHtml(req) ? { Location: loginLocation(req, trustedProxies) } : undefined;
        return sendError(req, res, errors.unauthenticated(), requestId, extra);
      }
      return sendError(req, res, result.error, requestId);
    }
    const forged = forgedIdentityHeader(req.rawHeaders);
    if (forged !== undefined) {
      // The ingress passes the client's headers on to the upstream; trackgate can only refuse.
      return sendError(req, res, new AppError('forged_identity_header', `header "${forged.slice(0, 64)}" is refused: it would pass for one of trackgate's identity headers`), requestId || requestIdOf(req, trustedProxies));
    }
    if (result.principal.via === 'session' && crossSiteStateChange(req, trustedProxies, publicOrigin)) {
      return sendError(req, res, errors.forbidden('cross-site request refused: a state-changing request with the session cookie must come from the same origin', 'csrf'), requestId || requestIdOf(req, trustedProxies));
    }
    // A flat [name, value, ...] list (the cheapest form for writeHead), made once per identity result.
    // No X-Request-Id on success: proxies drop it anyway.
    let headers = okHeaders.get(result.headers);
    if (!headers) {
      headers = OK_HEADERS.concat(result.headers);
      okHeaders.set(result.headers, headers);
    }
    res.writeHead(200, headers);
    res.end();
  };
  const okHeaders = new WeakMap<readonly string[], string[]>();

  return (req, res) => {
    const ready = identity.resolveSync(req, WITH_SESSION);
    if (ready) {
      // The request id is only made when an answer needs one.
      respond(req, res, ready, ready.ok ? '' : requestIdOf(req, trustedProxies));
      return;
    }
    const requestId = requestIdOf(req, trustedProxies);
    identity.resolve(req, WITH_SESSION).then(
      (result) => respond(req, res, result, requestId),
      (err: unknown) => {
        // A dependency that is down is answered 503 and is not a bug: logged, but not as one.
        if (isUnavailable(err)) logger?.warn({ err: err.message, requestId }, 'dependency unavailable: answered 503');
        else logger?.error({ err, requestId }, 'forward auth failed unexpectedly');
        sendError(req, res, err, requestId);
      },
    );
  };
}

const WITH_SESSION = { allowSession: true };
const OK_HEADERS: readonly string[] = ['Cache-Control', 'no-store', 'Content-Length', '0'];

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The path under which the check request carries the original path (Envoy ext_authz's `path_prefix`). */
export const VERIFY_PREFIX = '/auth/verify/';

/** The original path and query from `/auth/verify/<original path>`, or undefined for plain `/auth/verify`. */
function pathSuffix(req: IncomingMessage): string | undefined {
  const url = req.url ?? '';
  return url.startsWith(VERIFY_PREFIX) ? url.slice(VERIFY_PREFIX.length - 1) : undefined;
}

/**
 * The method of the request being authorized: the check request's own in the path-prefix form (Envoy
 * sends the original method), else what a trusted proxy says; undefined when nobody says.
 */
function originalMethod(req: IncomingMessage, trustedProxies: TrustedProxies): string | undefined {
  if (pathSuffix(req) !== undefined) return req.method;
  if (!trustedProxies.trusts(req.socket.remoteAddress)) return undefined;
  return (header(req, 'x-original-method') ?? header(req, 'x-forwarded-method'))?.toUpperCase();
}

/**
 * Whether a session-cookie request is a state change from another site. When nobody says the
 * original method (an ingress that sends neither X-Original-Method nor X-Forwarded-Method, or an
 * untrusted peer), the check request's own method stands for it unless it is GET or HEAD; failing
 * that, a cross-site Origin (browsers send Origin with every request that is not a GET or HEAD,
 * and with every cross-origin fetch) or Sec-Fetch-Site: cross-site outside a navigation is refused.
 * A cross-site link that a person opens (a GET navigation, no Origin) still works.
 */
function crossSiteStateChange(req: IncomingMessage, trustedProxies: TrustedProxies, publicOrigin: string): boolean {
  const method = originalMethod(req, trustedProxies) ?? (req.method === 'GET' || req.method === 'HEAD' ? undefined : req.method);
  if (method !== undefined) return !SAFE_METHODS.has(method) && !isSameOrigin(req, publicOrigin);
  const origin = header(req, 'origin');
  if (origin !== undefined) return origin !== publicOrigin;
  return header(req, 'sec-fetch-site') === 'cross-site' && header(req, 'sec-fetch-mode') !== 'navigate';
}

/**
 * `/login`, with `return_to` when we know where the browser was going: the original path of the
 * path-prefix form, or what a trusted proxy told us. Same-origin paths only (safeReturnTo).
 */
export function loginLocation(req: IncomingMessage, trustedProxies: TrustedProxies): string {
  const trusted = trustedProxies.trusts(req.socket.remoteAddress);
  let uri = pathSuffix(req);
  if (uri === undefined) {
    if (!trusted) return '/login';
    uri = header(req, 'x-original-uri') ?? header(req, 'x-forwarded-uri');
  }
  const prefix = trusted ? header(req, 'x-forwarded-prefix') : undefined;
  if (uri && prefix && !uri.startsWith(prefix)) uri = prefix.replace(/\/+$/, '') + uri;
  return loginPath(uri);
}

