// The edge's side of the error catalogue (src/errors): how a domain error is answered over HTTP. The one
// mapping from an error to a status and headers lives here, and every renderer (the JSON one of the API
// and the lean handlers in raw-response.ts, the pages' through express-app.ts) goes through it.
import { AppError } from '../errors/app-error.ts';
import type { ErrorCode, ErrorKind } from '../errors/catalogue.ts';

export const WWW_AUTHENTICATE = 'Basic realm="trackgate", charset="UTF-8", Bearer realm="trackgate"';

/** The HTTP status of each kind of error; a code's status is its kind's (see ERROR_CATALOGUE). */
const KIND_STATUS: Readonly<Record<ErrorKind, number>> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  not_supported: 405,
  timeout: 408,
  conflict: 409,
  gone: 410,
  length_required: 411,
  precondition_failed: 412,
  too_large: 413,
  unsupported: 415,
  range_not_satisfiable: 416,
  unprocessable: 422,
  rate_limited: 429,
  internal: 500,
  upstream_failed: 502,
  unavailable: 503,
  upstream_timeout: 504,
};

/** The kind of a library's 4xx (the reverse of KIND_STATUS); a status not listed is answered 400. */
const STATUS_KIND: ReadonlyMap<number, ErrorKind> = new Map(Object.entries(KIND_STATUS).filter(([, s]) => s < 500).map(([k, s]) => [s, k as ErrorKind]));

/** The HTTP status an error is answered with: an AppError's, or a sign-in problem's (LOGIN_PROBLEMS), by its kind. */
export function httpStatusOf(err: { readonly kind: ErrorKind }): number {
  return KIND_STATUS[err.kind];
}

/**
 * The HTTP headers an error's domain facts call for, or undefined: the authentication challenge
 * (WWW-Authenticate) and when to try again (Retry-After, whole seconds, at least 1).
 */
export function httpHeadersOf(err: AppError): Record<string, string> | undefined {
  if (err.challenge) return CHALLENGE;
  if (err.retryAfterSeconds !== undefined) return { 'Retry-After': String(Math.max(1, Math.ceil(err.retryAfterSeconds))) };
  return undefined;
}
const CHALLENGE: Readonly<Record<string, string>> = { 'WWW-Authenticate': WWW_AUTHENTICATE };

/**
 * The body of every JSON error answer (the API's and the lean handlers'): `{"error":{"code","message",
 * "request_id"}}`, plus `problems` (field, code, message) when the error lists what is wrong field by
 * field (every validation_failed, sso_configuration_invalid). Documented once: OpenAPI's Error schema.
 */
export function errorJson(err: AppError, requestId: string): string {
  const problems = err.problems;
  return JSON.stringify({ error: problems === undefined ? { code: err.code, message: err.message, request_id: requestId } : { code: err.code, message: err.message, request_id: requestId, problems } });
}

/**
 * Whether a path (without its query) is the tracking API's GraphQL endpoint: `/graphql`, or one under a prefix
 * (`/api/graphql`). Its clients read GraphQL's `errors`, not trackgate's `error` (graphqlErrorJson).
 */
export function isGraphqlPath(path: string): boolean {
  return path.endsWith('/graphql');
}

/**
 * The JSON error body with, beside `error`, a GraphQL `errors` array (message, and the code and request id in
 * `extensions`): the tracking client's Go core reads GraphQL answers with a library that keeps only `data` and
 * `errors`, so with `error` alone it showed a revoked key as `returned error 401: {"data":null}`.
 */
export function graphqlErrorJson(err: AppError, requestId: string): string {
  const body = JSON.parse(errorJson(err, requestId)) as { error: object };
  return JSON.stringify({ ...body, errors: [{ message: err.message, extensions: { code: err.code, request_id: requestId } }] });
}

/** SCIM's media type (RFC 7644 §3.1), of its resources and its errors. */
export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

/**
 * Whether a path is under /scim: its errors are SCIM's (scimErrorJson), whichever side of trackgate answers
 * them, and its body is read only after its token is checked. In any case, as Express matches the mount:
 * /SCIM/v2/Users reached the SCIM router while this said no (its body read without a token, its errors the API's).
 */
export function isScimPath(path: string): boolean {
  const p = path.slice(0, 6).toLowerCase();
  return p === '/scim' || p === '/scim/' || p === '/scim?';
}

/** RFC 7644 §3.12's scimType of the catalogue codes that have one. */
const SCIM_TYPES: Partial<Record<ErrorCode, string>> = {
  scim_invalid_filter: 'invalidFilter',
  scim_invalid_syntax: 'invalidSyntax',
  bad_request: 'invalidSyntax',
  scim_invalid_value: 'invalidValue',
  validation_failed: 'invalidValue',
  scim_invalid_path: 'invalidPath',
  scim_no_target: 'noTarget',
  scim_too_many: 'tooMany',
  scim_mutability: 'mutability',
  scim_uniqueness: 'uniqueness',
  name_taken: 'uniqueness',
  username_taken: 'uniqueness',
  user_taken: 'uniqueness',
  email_taken: 'uniqueness',
  email_unavailable: 'uniqueness',
};

/** The challenge of a SCIM 401: its token is a Bearer token, never Basic. */
export const SCIM_CHALLENGE = 'Bearer realm="trackgate-scim"';

/**
 * The body of every error under /scim (RFC 7644 §3.12): `schemas`, `status` as a string (Okta's and
 * Entra ID's validators insist), `scimType` where one applies, `detail` (the catalogue message, with
 * the problems field by field; a 5xx says nothing of its cause). The request id is in X-Request-Id.
 */
export function scimErrorJson(err: AppError): string {
  const scimType = SCIM_TYPES[err.code];
  const detail = err.problems?.length ? `${err.message}: ${err.problems.map((p) => (p.field ? `${p.field} ${p.message}` : p.message)).join('; ')}` : err.message;
  return JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(httpStatusOf(err)), ...(scimType ? { scimType } : {}), detail });
}

/**
 * Whether a path is under /oidc (trackgate's own OAuth endpoints: the token endpoint of workload
 * federation): its errors are RFC 6749's (oauthErrorJson), whichever side of trackgate answers them.
 */
export function isOidcPath(path: string): boolean {
  const p = path.slice(0, 6).toLowerCase();
  return p === '/oidc' || p === '/oidc/' || p === '/oidc?';
}

/** RFC 6749 §5.2's error of each catalogue code that has one; every other code is named by its kind (oauthErrorName). */
const OAUTH_ERRORS: Partial<Record<ErrorCode, string>> = {
  oauth_invalid_request: 'invalid_request',
  oauth_invalid_grant: 'invalid_grant',
  oauth_unsupported_grant_type: 'unsupported_grant_type',
};

function oauthErrorName(err: AppError): string {
  const named = OAUTH_ERRORS[err.code];
  if (named) return named;
  switch (err.kind) {
    case 'internal':
      return 'server_error';
    case 'unavailable':
    case 'upstream_failed':
    case 'upstream_timeout':
    case 'rate_limited':
      return 'temporarily_unavailable';
    default:
      // A body too large, a content type not a form, a method not served: the request is wrong.
      return 'invalid_request';
  }
}

/**
 * The body of every error under /oidc (RFC 6749 §5.2): `error` from its fixed vocabulary and an
 * `error_description`. An invalid_grant says nothing of why (which check failed would help an attacker
 * shape the next assertion): the service logs and audits the detail instead. A 5xx says nothing of its cause.
 */
export function oauthErrorJson(err: AppError): string {
  return JSON.stringify({ error: oauthErrorName(err), error_description: err.message });
}

const STATUS_CODES: Partial<Record<number, ErrorCode>> = { 400: 'bad_request', 404: 'not_found', 405: 'method_not_allowed', 408: 'request_timeout', 411: 'length_required', 413: 'payload_too_large', 415: 'unsupported_encoding', 416: 'range_not_satisfiable' };

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
      return new AppError('bad_request', 'malformed JSON in request body');
    case 'entity.too.large':
      return new AppError('payload_too_large', 'request body is too large');
    case 'encoding.unsupported':
      return new AppError('unsupported_encoding', `unsupported Content-Encoding "${said(e.encoding)}": send gzip, deflate, br or none`);
    case 'charset.unsupported':
      return new AppError('unsupported_encoding', `unsupported charset "${said(e.charset)}" for the request body: send utf-8`);
    case 'parameters.too.many':
      return new AppError('payload_too_large', 'too many parameters in the form body');
    case 'request.aborted':
      return new AppError('request_aborted', 'the request was aborted before its body was complete');
    case 'request.size.invalid':
      return new AppError('bad_request', 'the request body does not match its Content-Length');
  }
  // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR, ...) and brotli's/zstd's (ERR_BROTLI_..., ERR__ERROR_FORMAT_...).
  if (typeof e.code === 'string' && /^(Z_|ERR_BROTLI|ERR_ZSTD|ERR__)/.test(e.code)) {
    return new AppError('malformed_body', `the request body does not decompress as its Content-Encoding says (${said(e.message) || 'corrupt data'})`);
  }
  // send (static files) says only "Bad Request" for a path it cannot decode.
  if (err instanceof URIError || (status === 400 && path !== undefined && !decodes(path))) {
    return new AppError('malformed_path', 'the path has malformed percent-encoding (a %XX sequence that is not valid UTF-8)');
  }
  const message = e.expose === true && typeof e.message === 'string' && e.message !== '' ? e.message.slice(0, 200) : 'the request could not be handled';
  // The status the library chose is kept even when its code is the generic one (send's 403 or 412).
  return new AppError(STATUS_CODES[status] ?? 'bad_request', message, { kind: STATUS_KIND.get(status) ?? 'invalid' });
}

function decodes(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}
