import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { AppError, errors, isUnavailable } from '../errors/app-error.ts';
import type { TrustedProxies } from '../http/client-ip.ts';
import type { Logger } from '../log/logger.ts';
import { asksForHtml } from '../http/browser.ts';
import { isSameOrigin, SAFE_METHODS } from '../http/csrf.ts';
import type { GatewayIdentity, IdentityResult } from './identity.ts';
import { hasDotSegment } from '../http/dot-segments.ts';
import { hasFoldedSpelling } from './header-spelling.ts';
import { rawHeader, requestIdOf, sendError } from '../http/raw-response.ts';
import { loginPath } from '../http/return-to.ts';
import { HOP_BY_HOP, ProxyHandler, dropConnectionListed } from '../http/forward-exchange.ts';
import type { ForwardTarget } from '../http/forward-exchange.ts';

export interface ProxyOptions {
  /** The tracking API: origin plus an optional base path. */
  upstreamUrl: string;
  /** 504 when the upstream sends no response headers (or no body data) for this long. */
  timeoutMs: number;
  /** Keep-alive connections to the upstream. */
  connections: number;
  identity: GatewayIdentity;
  trustedProxies: TrustedProxies;
  /** trackgate's external URL: the origin a cookie-authenticated state change must come from. */
  publicUrl: string;
  /** Cookies that belong to trackgate and never travel upstream; default: names starting with "trackgate" (also __Host-/__Secure-). */
  isOwnCookie?: (name: string) => boolean;
  logger?: Logger | null;
}

export interface Proxy {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

/**
 * Request headers never forwarded: the client's credentials (the key never
 * travels upstream), identity claims that only trackgate may make, headers
 * trackgate sets itself, and Expect (Node already answered 100-continue).
 */
const DROPPED_REQUEST = new Set([
  ...HOP_BY_HOP,
  'authorization',
  'host',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-real-ip',
  'x-request-id',
  // Other spellings of the client's address, scheme or URL that upstream frameworks and their
  // proxies believe (Akamai, Cloudflare, Rack, IIS/Symfony's URL rewrites); trackgate sets none
  // of them, so a client's copy would be a forgery.
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'client-ip',
  'front-end-https',
  'x-url-scheme',
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-original-host',
  'x-host',
  // The attribution claim is resolved here; upstream only ever sees X-Trackgate-Attributed-User.
  'x-wandb-username',
  'x-wandb-user-email',
]);

const WITH_SESSION = { allowSession: true };
/** Bodies up to this size are read before they are sent on; larger ones stream. */
const SMALL_BODY = 64 * 1024;

const defaultOwnCookie = (name: string): boolean => /^(__Host-|__Secure-)?trackgate/i.test(name);

/**
 * The reverse proxy in front of the tracking API, a raw node handler (no
 * Express on this path). Every request is authenticated first; only then is
 * it streamed to the upstream over a keep-alive undici Pool, with the
 * client's credentials and any X-Trackgate-* header removed and trackgate's
 * identity headers and signed assertion added. Bodies stream both ways with
 * backpressure; nothing is buffered.
 */
export function createProxy(options: ProxyOptions): Proxy {
  const upstream = new URL(options.upstreamUrl);
  const basePath = upstream.pathname.replace(/\/+$/, '');
  const pool = new Pool(upstream.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connectTimeout: Math.min(10_000, options.timeoutMs),
  });
  const publicOrigin = new URL(options.publicUrl).origin;
  const isOwnCookie = options.isOwnCookie ?? defaultOwnCookie;
  const { identity, trustedProxies, logger } = options;

  function handler(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIdOf(req, trustedProxies);
    const url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 /* / */) {
      sendError(req, res, errors.badRequest('request target must be a path'), requestId);
      return;
    }
    if (req.method === 'CONNECT' || req.method === 'TRACE') {
      sendError(req, res, new AppError('method_not_allowed', `${req.method} is not allowed through the gateway`), requestId);
      return;
    }
    // The path goes upstream as sent, after the base path: a dot segment would climb out of it.
    if (hasDotSegment(url)) {
      sendError(req, res, errors.malformedPath('the path has a "." or ".." segment (also percent-encoded, or between encoded slashes or backslashes): send the path without it'), requestId);
      return;
    }
    const ready = identity.resolveSync(req, WITH_SESSION);
    if (ready) {
      proceed(req, res, ready, requestId);
      return;
    }
    identity.resolve(req, WITH_SESSION).then(
      (result) => proceed(req, res, result, requestId),
      (err: unknown) => {
        // A dependency that is down is answered 503 and is not a bug: logged, but not as one.
        if (isUnavailable(err)) logger?.warn({ err: err.message, requestId }, 'dependency unavailable: answered 503');
        else logger?.error({ err, requestId }, 'gateway: authentication failed unexpectedly');
        sendError(req, res, err, requestId);
      },
    );
  }

  function proceed(req: IncomingMessage, res: ServerResponse, result: IdentityResult, requestId: string): void {
    if (!result.ok) {
      if (result.anonymous) return unauthenticated(req, res, requestId);
      return sendError(req, res, result.error, requestId);
    }
    if (result.principal.via === 'session' && !SAFE_METHODS.has(req.method ?? 'GET') && !isSameOrigin(req, publicOrigin)) {
      return sendError(req, res, errors.forbidden('cross-site request refused: a state-changing request with the session cookie must come from the same origin', 'csrf'), requestId);
    }
    forward(req, res, result.headers, requestId);
  }

  function forward(req: IncomingMessage, res: ServerResponse, identityHeaders: readonly string[], requestId: string): void {
    const headers = upstreamHeaders(req, identityHeaders, requestId);
    const h = new ProxyHandler(req, res, requestId, logger ?? null, TRACKING_API);
    const length = rawHeader(req, 'content-length');
    const chunked = rawHeader(req, 'transfer-encoding') !== undefined;
    if (!chunked && (length === undefined || length === '0')) return dispatch(req, headers, h, null);
    if (length === undefined || chunked || Number(length) > SMALL_BODY) {
      // Large or of unknown length: streamed as it arrives, with backpressure both ways.
      return dispatch(req, headers, h, req);
    }
    // A small body (a GraphQL query) is read first, so that headers and body leave in one write.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => dispatch(req, headers, h, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  }

  function dispatch(req: IncomingMessage, headers: string[], h: ProxyHandler, body: Buffer | IncomingMessage | null): void {
    pool.dispatch(
      {
        path: basePath + (req.url ?? '/'),
        method: req.method ?? 'GET',
        headers,
        body,
        // Not retried by undici: a POST is never sent twice.
        idempotent: false,
        blocking: false,
      },
      // The original handler interface (see ProxyHandler): typed as deprecated in undici 7, called directly by it.
      h,
    );
  }

  /**
   * The request headers for the upstream, from one pass over the raw list (Node's
   * `req.headers` object is never built on this path): hop-by-hop, credentials,
   * client-made identity claims and trackgate's cookies removed; X-Forwarded-*
   * and the identity headers added.
   */
  function upstreamHeaders(req: IncomingMessage, identityHeaders: readonly string[], requestId: string): string[] {
    const raw = req.rawHeaders;
    const out: string[] = [];
    let connection: string | undefined;
    let xff: string | undefined;
    let xfProto: string | undefined;
    let xfHost: string | undefined;
    let host: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      // Dropped whatever it is, as nginx does by default: an upstream that folds "_" or "." to "-"
      // would read X_Trackgate_User as trackgate's own header (header-spelling.ts).
      if (hasFoldedSpelling(name)) continue;
      const lower = name.toLowerCase();
      if (DROPPED_REQUEST.has(lower)) {
        if (lower === 'connection') connection = connection === undefined ? raw[i + 1]! : `${connection}, ${raw[i + 1]!}`;
        else if (lower === 'x-forwarded-for') xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
        else if (lower === 'x-forwarded-proto') xfProto ??= raw[i + 1]!;
        else if (lower === 'x-forwarded-host') xfHost ??= raw[i + 1]!;
        else if (lower === 'host') host ??= raw[i + 1]!;
        continue;
      }
      if (lower.startsWith('x-trackgate-')) continue;
      if (lower === 'cookie') {
        const kept = filterCookies(raw[i + 1]!, isOwnCookie);
        if (kept) out.push(name, kept);
        continue;
      }
      out.push(name, raw[i + 1]!);
    }
    if (connection !== undefined) dropConnectionListed(out, connection);
    const peer = req.socket.remoteAddress ?? '';
    const trusted = trustedProxies.trusts(peer);
    const proto = trusted ? firstValue(xfProto) : undefined;
    const fwdHost = trusted ? firstValue(xfHost) : undefined;
    out.push(
      'x-forwarded-for', trusted && xff ? `${xff}, ${peer}` : peer,
      'x-forwarded-proto', proto ?? ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'),
      'x-request-id', requestId,
    );
    const h = fwdHost ?? host;
    if (h) out.push('x-forwarded-host', h);
    for (let i = 0; i < identityHeaders.length; i++) out.push(identityHeaders[i]!);
    return out;
  }

  return {
    handler,
    close: () => pool.close(),
  };
}

const TRACKING_API: ForwardTarget = {
  timeout: () => new AppError('upstream_timeout', 'the tracking API did not answer in time'),
  unavailable: () => new AppError('upstream_unavailable', 'the tracking API could not be reached'),
  name: 'upstream',
};

/** The first entry of a comma-separated header value (X-Forwarded-Proto / -Host). */
function firstValue(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const comma = s.indexOf(',');
  return (comma === -1 ? s : s.slice(0, comma)).trim() || undefined;
}

/** The Cookie header without trackgate's own cookies; '' when none is left. */
function filterCookies(header: string, isOwn: (name: string) => boolean): string {
  if (header.indexOf('rackgate') === -1 && isOwn === defaultOwnCookie) return header;
  return header
    .split(';')
    .map((c) => c.trim())
    .filter((c) => {
      if (c === '') return false;
      const eq = c.indexOf('=');
      return !isOwn(eq === -1 ? c : c.slice(0, eq));
    })
    .join('; ');
}

function unauthenticated(req: IncomingMessage, res: ServerResponse, requestId: string): void {
  // A person in a browser is sent to log in; an API client gets 401 with WWW-Authenticate.
  if ((req.method === 'GET' || req.method === 'HEAD') && asksForHtml(req)) {
    res.writeHead(302, { Location: loginPath(req.url), 'Cache-Control': 'no-store', 'X-Request-Id': requestId, 'Content-Length': 0 });
    res.end();
    return;
  }
  sendError(req, res, errors.unauthenticated(), requestId);
}
