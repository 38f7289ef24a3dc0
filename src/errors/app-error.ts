import { ERROR_CATALOGUE, SERVER_KINDS } from './catalogue.ts';
import type { ErrorCode, ErrorKind } from './catalogue.ts';

export interface AppErrorOptions {
  /** Structured detail a client may act on (validation problems); shown by renderers that support it. */
  details?: unknown;
  /** Overrides the code's kind from the catalogue, for the few codes refused in two situations. */
  kind?: ErrorKind;
  /** When the caller may try again (rate limits, a restarting worker). */
  retryAfterSeconds?: number;
  /** The caller should be told how to authenticate (which credentials trackgate takes). */
  challenge?: boolean;
  cause?: unknown;
}

/**
 * Every error the service means to show a client is an AppError: a stable
 * machine-readable code from the catalogue, and a message that names the
 * problem. How it is answered (an HTTP status and headers, a CLI exit) is the
 * edge's business, decided by its kind. Anything else is a bug and is rendered
 * as a generic internal error.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: unknown;
  readonly retryAfterSeconds: number | undefined;
  readonly challenge: boolean;

  constructor(code: ErrorCode, message: string, options?: AppErrorOptions) {
    const kind = options?.kind ?? ERROR_CATALOGUE[code].kind;
    // A client's error is an expected answer, not a bug: capturing its stack trace only
    // costs CPU, and under a flood of bad credentials it dominated the profile.
    const limit = Error.stackTraceLimit;
    if (!SERVER_KINDS.has(kind)) Error.stackTraceLimit = 0;
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'AppError';
    this.code = code;
    this.kind = kind;
    this.details = options?.details;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.challenge = options?.challenge === true;
  }

  /** Whether the failure is the caller's (an expected answer) rather than trackgate's own. */
  get isClientError(): boolean {
    return !SERVER_KINDS.has(this.kind);
  }
}

const UNAUTHENTICATED = { kind: 'unauthenticated', challenge: true } as const;
const FORBIDDEN = { kind: 'forbidden' } as const;
const CONFLICT = { kind: 'conflict' } as const;

/** The common errors. Each passes its kind, so a specific code keeps the kind of the factory it goes through. */
export const errors = {
  badRequest: (message: string, details?: unknown) => new AppError('bad_request', message, { details }),
  validation: (message: string, details?: unknown) => new AppError('validation_failed', message, { details }),
  /** A request path no handler may act on: bad percent-encoding, or a dot segment on the way to the upstream. */
  malformedPath: (message: string) => new AppError('malformed_path', message),
  unauthenticated: (message = 'authentication required: send an API key as HTTP Basic (user "api") or Bearer', code: ErrorCode = 'unauthenticated') =>
    new AppError(code, message, UNAUTHENTICATED),
  forbidden: (message: string, code: ErrorCode = 'forbidden') => new AppError(code, message, FORBIDDEN),
  notFound: (what: string) => new AppError('not_found', `${what} not found`),
  conflict: (message: string, code: ErrorCode = 'conflict') => new AppError(code, message, CONFLICT),
  tooManyRequests: (message: string, retryAfterSeconds: number) => new AppError('rate_limited', message, { retryAfterSeconds }),
  internal: () => new AppError('internal_error', 'internal error'),
};
