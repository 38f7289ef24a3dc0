import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../http/errors.ts';

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

/** The caller's X-Request-Id when it is sane, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = rawHeader(req, 'x-request-id');
  return given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Writes an error the way every trackgate endpoint does:
 * `{"error":{"code","message","request_id"}}`, with the AppError's headers
 * (WWW-Authenticate, Retry-After). Anything that is not an AppError is a
 * generic 500 that shows nothing of its cause. When the request body was not
 * read, the connection is closed afterwards rather than draining an upload
 * nobody wants.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, requestId: string, extraHeaders?: Record<string, string>): void {
  const app = err instanceof AppError ? err : new AppError(500, 'internal_error', 'internal error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: app.code, message: app.message, request_id: requestId } });
  const headers: Record<string, string | number> = {
    ...app.headers,
    ...extraHeaders,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
  };
  if (!req.complete && hasRequestBody(req)) {
    headers.Connection = 'close';
    res.shouldKeepAlive = false;
  }
  res.writeHead(app.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Whether the request announces a body (a non-zero Content-Length or any Transfer-Encoding). */
export function hasRequestBody(req: IncomingMessage): boolean {
  const cl = rawHeader(req, 'content-length');
  if (cl !== undefined) return cl !== '0';
  return rawHeader(req, 'transfer-encoding') !== undefined;
}
