// The one list of the errors trackgate answers with. Each code is declared here once, with what it
// means and the kind of failure it is; code elsewhere names codes only from this list (ErrorCode is a
// union of its keys, so a code that is not here does not compile). Nothing here knows about HTTP: the
// edge (src/http/errors.ts) maps each kind to a status, so the CLI, the API, the lean handlers
// and the pages all describe one failure the same way.

/**
 * What sort of failure a code is, in the domain's terms. A kind decides how an edge answers (an HTTP
 * status, a CLI exit) and whether the failure is the caller's (an expected answer) or trackgate's own
 * (logged with its stack trace).
 */
export type ErrorKind =
  /** The request itself is malformed or breaks a field's rules. */
  | 'invalid'
  /** No usable credential came with the request. */
  | 'unauthenticated'
  /** The caller is known but may not do this. */
  | 'forbidden'
  /** The thing named does not exist, or the caller may not know that it does. */
  | 'not_found'
  /** The operation does not exist for this target (a method a path does not serve). */
  | 'not_supported'
  /** The caller took too long to send its request. */
  | 'timeout'
  /** The request contradicts the current state (a taken name, the last admin). */
  | 'conflict'
  /** The thing named existed once and is used up for good (a used or expired login link). */
  | 'gone'
  /** The request announces no length where one is needed. */
  | 'length_required'
  /** A precondition the caller set does not hold. */
  | 'precondition_failed'
  /** The request is larger than trackgate accepts. */
  | 'too_large'
  /** The request is in an encoding or charset trackgate does not read. */
  | 'unsupported'
  /** The range asked for lies outside the content. */
  | 'range_not_satisfiable'
  /** Well-formed, but refused as a whole (a reserved name, a configuration with problems). */
  | 'unprocessable'
  /** The caller has used up its budget of attempts; `retryAfterSeconds` says when to try again. */
  | 'rate_limited'
  /** A bug or an unexpected failure inside trackgate. */
  | 'internal'
  /** A service trackgate relays to (the tracking API) could not be reached or failed. */
  | 'upstream_failed'
  /** Trackgate cannot take the request right now (restarting, saturated); `retryAfterSeconds` says when to try again. */
  | 'unavailable'
  /** A service trackgate relays to (the tracking API, the management worker) did not answer in time. */
  | 'upstream_timeout';

/** The kinds that are trackgate's failure, not the caller's: they are logged with a stack trace. */
export const SERVER_KINDS: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['internal', 'upstream_failed', 'unavailable', 'upstream_timeout']);

interface Entry {
  /** The kind an error with this code has unless the place that raises it says otherwise. */
  readonly kind: ErrorKind;
  /** What the code means, for whoever reads a log, a client's report or the API reference. */
  readonly meaning: string;
}

/**
 * Every code trackgate answers with. Two codes are raised with more than one kind because the same
 * fact is refused in two situations: `key_expired`/`key_revoked` are `unauthenticated` when the key is
 * used and `conflict` when it is rotated, and `user_deactivated` is `conflict` in management and
 * `forbidden` when a login link is used. Those places pass the kind explicitly.
 *
 * Why an SSO sign-in did not complete is another vocabulary, LOGIN_PROBLEMS (./login-problems.ts): those
 * codes describe an IdP's answer for an admin and are shown on the sign-in page, never as API answers.
 * `email_unavailable` and `user_deactivated` are in both on purpose: the same fact met by the API (a
 * management request, answered with this catalogue's kind) and by a sign-in (a refusal on the sign-in
 * page, with the admin-facing wording and kind of LOGIN_PROBLEMS: a sign-in refusal is `forbidden`, not a
 * management `conflict`). Each list is the complete vocabulary of its own class (AppError, OidcLoginError),
 * so the two codes are spelt alike on purpose, for whoever searches the log for one fact.
 *
 * RFC 6749 errors (`invalid_request`, `invalid_grant`, ...) of trackgate's own /oidc endpoints have their own fixed vocabulary and
 * wire format (`{error, error_description}`): their own section below (`oauth_…`) and their own renderer at the edge.
 */
export const ERROR_CATALOGUE = {
  // --- Malformed requests
  bad_request: { kind: 'invalid', meaning: 'The request is malformed in a way no more specific code names (bad JSON, a body that does not match its Content-Length, a NUL character).' },
  validation_failed: { kind: 'invalid', meaning: 'A field of the path, query or body breaks its declared rules; `problems` lists each, field by field.' },
  malformed_path: { kind: 'invalid', meaning: 'The path has percent-encoding that is not UTF-8, or a dot segment on its way to the upstream.' },
  malformed_body: { kind: 'invalid', meaning: 'The request body does not decompress as its Content-Encoding says.' },
  request_aborted: { kind: 'invalid', meaning: 'The client gave up before its request body was complete.' },
  forged_identity_header: { kind: 'invalid', meaning: "The request carries a header that would pass for one of trackgate's identity headers upstream." },
  method_not_allowed: { kind: 'not_supported', meaning: 'The method is not served on this path (the gateway relays only the methods the tracking API takes).' },
  request_timeout: { kind: 'timeout', meaning: 'The request body did not arrive in time.' },
  length_required: { kind: 'length_required', meaning: 'The request has a body but announces no length.' },
  payload_too_large: { kind: 'too_large', meaning: 'The request body, or the number of form fields, is over the limit.' },
  unsupported_encoding: { kind: 'unsupported', meaning: 'The body is in a Content-Encoding or charset trackgate does not read.' },
  range_not_satisfiable: { kind: 'range_not_satisfiable', meaning: 'The Range asked of a static file lies outside it.' },

  // --- Authentication
  unauthenticated: { kind: 'unauthenticated', meaning: 'No credential came with a request that needs one.' },
  invalid_credentials: { kind: 'unauthenticated', meaning: 'The Authorization header cannot be read as HTTP Basic (user "api") or Bearer.' },
  invalid_key: { kind: 'unauthenticated', meaning: 'The API key is not one trackgate issued, or its secret does not match.' },
  key_expired: { kind: 'unauthenticated', meaning: 'The API key has expired: it no longer authenticates, and cannot be rotated.' },
  key_revoked: { kind: 'unauthenticated', meaning: 'The API key was revoked: it no longer authenticates, and cannot be rotated.' },
  invalid_token: { kind: 'unauthenticated', meaning: 'The bearer token is neither an API key nor a valid access token.' },
  access_token_expired: { kind: 'unauthenticated', meaning: 'The access token (workload federation) has expired: exchange a new workload token at /oidc/token.' },
  access_token_revoked: { kind: 'unauthenticated', meaning: 'The access token (workload federation) was revoked: its service account or federation rule was deleted, or it was reported leaked.' },
  invalid_signature: { kind: 'unauthenticated', meaning: "A secret scanner's report is not signed, or not by one of the scanner's published keys: nothing was revoked." },
  account_deactivated: { kind: 'unauthenticated', meaning: 'The credential is valid but its account was deactivated or deleted.' },
  rate_limited: { kind: 'rate_limited', meaning: 'Too many failed attempts (authentication, login links) from this address; wait and try again.' },
  too_many_login_attempts: { kind: 'rate_limited', meaning: 'Too many SSO sign-ins were started from this address; wait and try again.' },

  // --- Permission and policy
  forbidden: { kind: 'forbidden', meaning: 'The caller may not do this, for a reason no more specific code names.' },
  insufficient_role: { kind: 'forbidden', meaning: "The caller's organization or team role is below what this needs." },
  instance_admin_required: { kind: 'forbidden', meaning: 'Only the instance operator may do this.' },
  not_a_person: { kind: 'forbidden', meaning: 'Service accounts cannot do this (personal keys, managing keys or service accounts).' },
  operator_identity: { kind: 'forbidden', meaning: "Only the instance operator can unlink the operator's sign-in identity." },
  personal_keys_disabled: { kind: 'forbidden', meaning: "The organization's policy disables personal API keys." },
  enterprise_feature: { kind: 'forbidden', meaning: "Service accounts need the enterprise plan; the organization is on another." },
  sso_required: { kind: 'forbidden', meaning: 'The organization requires single sign-on: API keys of its people and login links are refused.' },
  csrf: { kind: 'forbidden', meaning: 'A state-changing request with the session cookie came from another origin (gateway Origin check).' },
  csrf_failed: { kind: 'forbidden', meaning: "A session-authenticated write did not carry the session's CSRF token." },
  link_confirmation_failed: { kind: 'forbidden', meaning: "A login link's Sign in button was pressed without the confirmation cookie of the browser that opened it." },
  attribution_unavailable: { kind: 'forbidden', meaning: 'Run attribution (X-WANDB-USERNAME) is not available on this gateway.' },
  attribution_not_member: { kind: 'forbidden', meaning: "The user a run is attributed to is not a member of the service account's team." },
  attribution_mismatch: { kind: 'forbidden', meaning: "X-WANDB-USER-EMAIL is not the email of the user named in X-WANDB-USERNAME." },

  // --- Existence
  not_found: { kind: 'not_found', meaning: 'The thing named does not exist, or the caller may not know that it does.' },
  link_unknown: { kind: 'not_found', meaning: 'The login link is not one trackgate issued, or its account no longer exists.' },
  link_used: { kind: 'gone', meaning: 'The login link was already used; each link signs in once.' },
  link_expired: { kind: 'gone', meaning: 'The login link is older than its lifetime (`LOGIN_LINK_TTL_MS` in src/web/login-links.service.ts).' },

  // --- State conflicts
  conflict: { kind: 'conflict', meaning: 'The request contradicts the current state, for a reason no more specific code names.' },
  name_taken: { kind: 'conflict', meaning: 'A user, team or service account already holds the name (names are one namespace).' },
  username_taken: { kind: 'conflict', meaning: 'A user, team or service account already holds the username.' },
  user_taken: { kind: 'conflict', meaning: 'The username is taken or the email cannot be used (a race caught by the database).' },
  email_taken: { kind: 'conflict', meaning: 'A user with this email already exists.' },
  email_unavailable: { kind: 'conflict', meaning: "The email cannot be used for an account in this organization (it belongs to another organization's domain)." },
  slug_taken: { kind: 'conflict', meaning: 'An organization with this slug already exists.' },
  name_reserved: { kind: 'unprocessable', meaning: 'The name is reserved: trackgate or the tracking service serves paths under it.' },
  last_admin: { kind: 'conflict', meaning: 'The change would leave the organization without an active admin.' },
  last_team_admin: { kind: 'conflict', meaning: 'The change would leave the team without an admin.' },
  user_deactivated: { kind: 'conflict', meaning: 'The user is deactivated (cannot join a team, be sent a login link, or sign in with one).' },
  owner_deactivated: { kind: 'conflict', meaning: "The API key's owner is deactivated: the key cannot be rotated." },
  key_limit_reached: { kind: 'conflict', meaning: 'The owner already holds as many live API keys as allowed (TRACKGATE_MAX_KEYS_PER_PRINCIPAL); revoke one first.' },
  service_account_keyless: { kind: 'conflict', meaning: 'The service account is keyless (federation only): it holds no API keys; it authenticates by exchanging workload tokens at /oidc/token.' },
  too_many_federated_credentials: { kind: 'conflict', meaning: 'The service account already has as many federation rules as allowed (10); delete one first.' },
  key_already_rotated: { kind: 'conflict', meaning: 'The API key was already replaced once; rotate its replacement instead.' },
  sso_not_configured: { kind: 'conflict', meaning: 'SSO cannot be required: the organization has no enabled SSO connection.' },
  sso_required_by_policy: { kind: 'conflict', meaning: "The last enabled SSO connection cannot be disabled or deleted while the organization requires SSO." },
  sso_configuration_invalid: { kind: 'unprocessable', meaning: 'An SSO connection was not saved: `problems` lists what is wrong with it, field by field.' },

  // --- Trackgate's own failures
  internal_error: { kind: 'internal', meaning: 'A bug or unexpected failure; the answer shows nothing of its cause, the log has it under the request id.' },
  upstream_unavailable: { kind: 'upstream_failed', meaning: 'The tracking API could not be reached.' },
  upstream_timeout: { kind: 'upstream_timeout', meaning: 'The tracking API did not answer in time.' },
  unavailable: { kind: 'unavailable', meaning: 'A dependency (the database or Redis) cannot be reached or did not answer in time; try again shortly.' },
  management_busy: { kind: 'unavailable', meaning: 'The management worker has too many requests in flight; try again in a moment.' },
  management_unavailable: { kind: 'unavailable', meaning: 'The management worker is restarting; try again in a moment.' },
  management_timeout: { kind: 'upstream_timeout', meaning: 'The management worker did not answer in time.' },

  // --- SCIM 2.0 (/scim/v2): RFC 7644 §3.12 errors. The SCIM renderer (src/http/errors.ts scimErrorJson) answers every
  //     code in the SCIM error shape; these name the scimType values that have no code elsewhere.
  invalid_scim_token: { kind: 'unauthenticated', meaning: 'The SCIM request carries no SCIM token of a live organization token (Bearer), or one that was revoked.' },
  scim_invalid_filter: { kind: 'invalid', meaning: 'The SCIM filter cannot be parsed, or uses an attribute or operator trackgate does not filter on (scimType invalidFilter).' },
  scim_invalid_syntax: { kind: 'invalid', meaning: 'The SCIM request body is not a SCIM message of the schema the endpoint takes (scimType invalidSyntax).' },
  scim_invalid_value: { kind: 'invalid', meaning: 'A SCIM attribute has a value of the wrong type or shape, or a required one is missing (scimType invalidValue).' },
  scim_invalid_path: { kind: 'invalid', meaning: 'A SCIM PATCH path names nothing trackgate can change (scimType invalidPath).' },
  scim_no_target: { kind: 'invalid', meaning: 'A SCIM PATCH path selects no value to change (scimType noTarget).' },
  scim_mutability: { kind: 'invalid', meaning: 'A SCIM request tries to change an attribute that cannot be changed (id, meta) (scimType mutability).' },
  scim_too_many: { kind: 'invalid', meaning: 'The SCIM request asks for more than trackgate answers at once (scimType tooMany).' },
  scim_uniqueness: { kind: 'conflict', meaning: 'A SCIM resource with this userName, externalId or displayName already exists (scimType uniqueness).' },
  scim_version_mismatch: { kind: 'precondition_failed', meaning: "The SCIM request's If-Match names another version of the resource than the current one." },
  team_managed_by_scim: { kind: 'conflict', meaning: "The team's members and name are managed by the organization's IdP through SCIM; change them there (roles stay the admin's)." },

  // --- RFC 6749 errors of trackgate's own /oidc endpoints (the token endpoint of workload federation). The
  //     OAuth renderer (src/http/errors.ts oauthErrorJson) answers every error under /oidc as `{error,
  //     error_description}`: these codes name RFC 6749 §5.2's errors; any other code is named by its kind.
  oauth_invalid_request: { kind: 'invalid', meaning: 'The token request is malformed: not a form body, a parameter missing or repeated (RFC 6749 invalid_request).' },
  oauth_invalid_grant: { kind: 'invalid', meaning: 'The assertion was refused: its signature, issuer, audience, times, replay or no matching federation rule; the detail is in the log and the audit, not the answer (RFC 6749 invalid_grant).' },
  oauth_unsupported_grant_type: { kind: 'invalid', meaning: 'The token endpoint takes only grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523) (RFC 6749 unsupported_grant_type).' },
} as const satisfies Record<string, Entry>;

/** A code from the catalogue: the only codes an AppError can carry. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;
