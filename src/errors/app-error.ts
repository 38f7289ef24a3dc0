import { ERROR_CATALOGUE, SERVER_KINDS } from './catalogue.ts';
import type { ErrorCode, ErrorKind } from './catalogue.ts';

/**
 * One thing wrong with a request or a setting, field by field: API clients get the list as
 * `error.problems` (src/http/errors.ts), a page's form shows each beside its field. `field` is the
 * dotted path of the field (empty for the request as a whole); `code` is the rule it breaks (zod's
 * issue code for a malformed field, a finding of discovery or references for an SSO connection).
 */
export interface FieldProblem {
  field: string;
  code: string;
  message: string;
}

export interface AppErrorOptions {
  /** What is wrong, field by field (validation, an SSO connection's configuration): answered as `error.problems`. */
  problems?: readonly FieldProblem[];
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
  readonly problems: readonly FieldProblem[] | undefined;
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
    this.problems = options?.problems;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.challenge = options?.challenge === true;
  }

  /** Whether the failure is the caller's (an expected answer) rather than trackgate's own. */
  get isClientError(): boolean {
    return !SERVER_KINDS.has(this.kind);
  }
}

/** What a client is told to wait after `unavailable`: about the time a restarted PostgreSQL or Redis takes to take connections again. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

const UNAUTHENTICATED = { kind: 'unauthenticated', challenge: true } as const;
const FORBIDDEN = { kind: 'forbidden' } as const;
const CONFLICT = { kind: 'conflict' } as const;

/** The common errors. Each passes its kind, so a specific code keeps the kind of the factory it goes through. */
export const errors = {
  badRequest: (message: string) => new AppError('bad_request', message),
  validation: (message: string, problems?: readonly FieldProblem[]) => new AppError('validation_failed', message, { problems }),
  /** A request path no handler may act on: bad percent-encoding, or a dot segment on the way to the upstream. */
  malformedPath: (message: string) => new AppError('malformed_path', message),
  unauthenticated: (message = 'authentication required: send an API key as HTTP Basic (user "api") or Bearer', code: ErrorCode = 'unauthenticated') =>
    new AppError(code, message, UNAUTHENTICATED),
  forbidden: (message: string, code: ErrorCode = 'forbidden') => new AppError(code, message, FORBIDDEN),
  notFound: (what: string) => new AppError('not_found', `${what} not found`),
  conflict: (message: string, code: ErrorCode = 'conflict') => new AppError(code, message, CONFLICT),
  tooManyRequests: (message: string, retryAfterSeconds: number) => new AppError('rate_limited', message, { retryAfterSeconds }),
  internal: () => new AppError('internal_error', 'internal error'),
  /**
   * A dependency could not be reached or did not answer in time. `dependency` names which one, and only
   * that ("the database", "the session store (Redis)"): the driver's text and the host stay in the
   * `cause`, for the log. Worth retrying, so it says when.
   */
  unavailable: (dependency: string, cause?: unknown) =>
    new AppError('unavailable', `${dependency} is unavailable: try again shortly`, { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS, cause }),
};

/** Whether an error is the `unavailable` of a dependency (errors.unavailable). */
export function isUnavailable(err: unknown): err is AppError {
  return err instanceof AppError && err.code === 'unavailable';
}
