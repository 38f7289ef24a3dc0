import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Paths that are trackgate's own. Everything else goes to the tracking API when
 * an upstream is configured. Exact paths and first segments, so that dispatch
 * is two set lookups and never a regex or a middleware stack.
 */
const OWN_EXACT = new Set(['/healthz', '/readyz', '/metrics', '/login', '/logout', '/settings', '/teams', '/admin', '/favicon.ico', '/gateway', '/scim', '/oidc']);
/** First path segments under which everything is trackgate's own ("/gateway" for "/gateway/..."). */
const OWN_SEGMENTS = new Set(['/gateway', '/login', '/teams', '/admin', '/auth', '/.well-known', '/oidc', '/scim', '/static', '/settings']);

export function isOwnPath(path: string): boolean {
  if (OWN_EXACT.has(path)) return true;
  // One lookup by the first segment rather than a startsWith per prefix: this runs for every proxied request.
  const slash = path.indexOf('/', 1);
  return slash !== -1 && OWN_SEGMENTS.has(path.slice(0, slash));
}

export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export interface Dispatch {
  /** Lean handlers by exact path, served before Express (the hot paths). */
  lean: Map<string, RequestHandler>;
  /** Lean handlers for every path under a prefix (ending in "/"), for trackgate's own paths only. */
  leanPrefixes?: ReadonlyArray<readonly [string, RequestHandler]>;
  /** The reverse proxy for paths that are not trackgate's own, when an upstream is configured. */
  proxy: RequestHandler | null;
  /** Everything else: the Express application. */
  app: RequestHandler;
}

export function createDispatcher(dispatch: Dispatch): RequestHandler {
  const prefixes = dispatch.leanPrefixes ?? [];
  return (req, res) => {
    const path = pathOf(req.url);
    const lean = dispatch.lean.get(path);
    if (lean) return lean(req, res);
    if (dispatch.proxy && !isOwnPath(path)) return dispatch.proxy(req, res);
    // Looked at only for trackgate's own paths: a proxied request never gets this far.
    for (let i = 0; i < prefixes.length; i++) if (path.startsWith(prefixes[i]![0])) return prefixes[i]![1](req, res);
    return dispatch.app(req, res);
  };
}

export interface HttpServerOptions {
  /** How long a request's head may take to arrive (slowloris); the answer is 408 and the connection closed. */
  headersTimeoutMs: number;
  /**
   * How long a whole request (head and body) may take to arrive; 0: no limit. The main server has none:
   * uploads through the proxy may take long, and the management paths bound their bodies themselves
   * (src/management/body-intake.ts).
   */
  requestTimeoutMs?: number;
}

/** The answers to a request that never became one (Node's parser or its timeouts refused it). */
const CLIENT_ERRORS: Record<string, readonly [status: string, code: string]> = {
  HPE_HEADER_OVERFLOW: ['431 Request Header Fields Too Large', 'headers_too_large'],
  ERR_HTTP_REQUEST_TIMEOUT: ['408 Request Timeout', 'request_timeout'],
};

export function createHttpServer(handler: RequestHandler, options: HttpServerOptions = { headersTimeoutMs: 10_000 }): http.Server {
  const server = http.createServer(
    {
      // Large headers are refused by Node itself with 431; keep the default 16 KiB limit explicit.
      maxHeaderSize: 16 * 1024,
      requestTimeout: options.requestTimeoutMs ?? 0,
      headersTimeout: options.headersTimeoutMs,
      // Node looks for expired heads this often (its default, 30 s, would let a slow head last that much longer).
      connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
      keepAliveTimeout: 65_000,
    },
    handler,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const [status, code] = CLIENT_ERRORS[err.code ?? ''] ?? ['400 Bad Request', 'bad_request'];
    const body = JSON.stringify({ error: { code, message: status.slice(4) } });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}
