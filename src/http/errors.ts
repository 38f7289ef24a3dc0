/**
 * Every error the service means to show a client is an AppError: a stable
 * machine-readable code, an HTTP status, and a message that names the problem.
 * Anything else is a bug and is rendered as a generic 500.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, options: { details?: unknown; headers?: Record<string, string>; cause?: unknown } = {}) {
    // A 4xx is an expected answer, not a bug: capturing its stack trace only
    // costs CPU, and under a flood of bad credentials it dominated the profile.
    const limit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

export const WWW_AUTHENTICATE = 'Basic realm="trackgate", charset="UTF-8", Bearer realm="trackgate"';

export const errors = {
  badRequest: (message: string, details?: unknown) => new AppError(400, 'bad_request', message, { details }),
  validation: (message: string, details?: unknown) => new AppError(400, 'validation_failed', message, { details }),
  /** A request path no handler may act on: bad percent-encoding, or a dot segment on the way to the upstream. */
  malformedPath: (message: string) => new AppError(400, 'malformed_path', message),
  unauthenticated: (message = 'authentication required: send an API key as HTTP Basic (user "api") or Bearer', code = 'unauthenticated') =>
    new AppError(401, code, message, { headers: { 'WWW-Authenticate': WWW_AUTHENTICATE } }),
  forbidden: (message: string, code = 'forbidden') => new AppError(403, code, message),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  conflict: (message: string, code = 'conflict') => new AppError(409, code, message),
  tooManyRequests: (message: string, retryAfterSeconds: number) =>
    new AppError(429, 'rate_limited', message, { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } }),
};

const STATUS_CODES: Record<number, string> = { 400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 408: 'request_timeout', 411: 'length_required', 413: 'payload_too_large', 415: 'unsupported_encoding', 416: 'range_not_satisfiable' };

/**
 * What a library threw on bad client input, as the AppError a client should see; null for anything
 * else (a bug: rendered as a generic 500). Libraries mark such errors http-errors style, with a 4xx
 * `status`/`statusCode` and `expose`: body-parser (a `type` such as entity.too.large; a body that does
 * not decompress is zlib's own error marked 400), the router (a path parameter whose percent-encoding
 * is not UTF-8 is a URIError marked 400), send/serve-static. Every renderer (Express's, the pages',
 * the lean handlers') goes through this, so the same input gets the same answer everywhere.
 */
export function clientErrorOf(err: unknown, path?: string): AppError | null {
  if (err instanceof AppError) return err;
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; type?: unknown; code?: unknown; message?: unknown; encoding?: unknown; charset?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined || !Number.isInteger(status) || status < 400 || status > 499) return null;
  const said = (s: unknown) => (typeof s === 'string' ? s.slice(0, 100) : '');
  switch (e.type) {
    case 'entity.parse.failed':
      return new AppError(400, 'bad_request', 'malformed JSON in request body');
    case 'entity.too.large':
      return new AppError(413, 'payload_too_large', 'request body is too large');
    case 'encoding.unsupported':
      return new AppError(415, 'unsupported_encoding', `unsupported Content-Encoding "${said(e.encoding)}": send gzip, deflate, br or none`);
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_encoding', `unsupported charset "${said(e.charset)}" for the request body: send utf-8`);
    case 'parameters.too.many':
      return new AppError(413, 'payload_too_large', 'too many parameters in the form body');
    case 'request.aborted':
      return new AppError(400, 'request_aborted', 'the request was aborted before its body was complete');
    case 'request.size.invalid':
      return new AppError(400, 'bad_request', 'the request body does not match its Content-Length');
  }
  // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR, ...) and brotli's/zstd's (ERR_BROTLI_..., ERR__ERROR_FORMAT_...).
  if (typeof e.code === 'string' && /^(Z_|ERR_BROTLI|ERR_ZSTD|ERR__)/.test(e.code)) {
    return new AppError(400, 'malformed_body', `the request body does not decompress as its Content-Encoding says (${said(e.message) || 'corrupt data'})`);
  }
  // send (static files) says only "Bad Request" for a path it cannot decode.
  if (err instanceof URIError || (status === 400 && path !== undefined && !decodes(path))) {
    return errors.malformedPath('the path has malformed percent-encoding (a %XX sequence that is not valid UTF-8)');
  }
  const message = e.expose === true && typeof e.message === 'string' && e.message !== '' ? e.message.slice(0, 200) : 'the request could not be handled';
  return new AppError(status, STATUS_CODES[status] ?? 'bad_request', message);
}

function decodes(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}
