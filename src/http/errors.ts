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
  unauthenticated: (message = 'authentication required: send an API key as HTTP Basic (user "api") or Bearer', code = 'unauthenticated') =>
    new AppError(401, code, message, { headers: { 'WWW-Authenticate': WWW_AUTHENTICATE } }),
  forbidden: (message: string, code = 'forbidden') => new AppError(403, code, message),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  conflict: (message: string, code = 'conflict') => new AppError(409, code, message),
  tooManyRequests: (message: string, retryAfterSeconds: number) =>
    new AppError(429, 'rate_limited', message, { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } }),
};
