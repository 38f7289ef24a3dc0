import { z } from 'zod';
import { ERROR_CATALOGUE } from '../errors/catalogue.ts';
import type { RouteSpec } from './api-router.ts';

/**
 * The codes of the error catalogue, each with its meaning (Redoc shows x-enumDescriptions beside the enum): the
 * document's list is the catalogue itself, so a code added there is documented here without another edit.
 */
const errorCode = {
  type: 'string',
  description: 'a code of the error catalogue (src/errors/catalogue.ts): the status says what kind of failure it is, the code which one',
  enum: Object.keys(ERROR_CATALOGUE),
  'x-enumDescriptions': Object.fromEntries(Object.entries(ERROR_CATALOGUE).map(([code, entry]) => [code, entry.meaning])),
};

/** The one JSON error body (src/http/errors.ts errorJson; graphqlErrorJson adds `errors`). */
const errorSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'request_id'],
      additionalProperties: false,
      properties: {
        code: errorCode,
        message: { type: 'string' },
        request_id: { type: 'string' },
        problems: {
          type: 'array',
          description: 'what is wrong, field by field: with validation_failed and sso_configuration_invalid',
          items: {
            type: 'object',
            required: ['field', 'code', 'message'],
            additionalProperties: false,
            properties: { field: { type: 'string', description: 'dotted path of the field; empty for the request as a whole' }, code: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
    errors: {
      type: 'array',
      description: "only on a request for the tracking API's GraphQL path (…/graphql), through the gateway or /auth/verify: the same error as GraphQL clients read it",
      items: {
        type: 'object',
        required: ['message', 'extensions'],
        additionalProperties: false,
        properties: {
          message: { type: 'string' },
          extensions: { type: 'object', required: ['code', 'request_id'], additionalProperties: false, properties: { code: errorCode, request_id: { type: 'string' } } },
        },
      },
    },
  },
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  try {
    const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
    delete s.$schema;
    return s;
  } catch {
    return {};
  }
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const identityHeaders = {
  'X-Trackgate-User': { schema: { type: 'string' }, description: 'username of the caller (a person or a service account)' },
  'X-Trackgate-Email': { schema: { type: 'string' }, description: 'email of a person' },
  'X-Trackgate-Org': { schema: { type: 'string' }, description: 'organization slug' },
  'X-Trackgate-Teams': { schema: { type: 'string' }, description: 'comma-separated names of the caller\'s teams' },
  'X-Trackgate-Principal-Type': { schema: { type: 'string', enum: ['user', 'service_account'] } },
  'X-Trackgate-Attributed-User': { schema: { type: 'string' }, description: 'for a service account: the team member named by X-WANDB-USERNAME / X-WANDB-USER-EMAIL' },
  'X-Trackgate-Assertion': { schema: { type: 'string' }, description: 'ES256 JWT with the same identity, verifiable against /.well-known/jwks.json' },
};

/** RFC 7644 §3.12's error body: every error under /scim is answered in it (src/http/errors.ts scimErrorJson). */
const scimErrorSchema = {
  type: 'object',
  required: ['schemas', 'status', 'detail'],
  additionalProperties: false,
  properties: {
    schemas: { type: 'array', items: { const: 'urn:ietf:params:scim:api:messages:2.0:Error' } },
    status: { type: 'string', description: 'the HTTP status, as a string' },
    scimType: { type: 'string', enum: ['invalidFilter', 'invalidSyntax', 'invalidValue', 'invalidPath', 'noTarget', 'mutability', 'tooMany', 'uniqueness'] },
    detail: { type: 'string' },
  },
};
const scimJson = (description: string) => ({ description, content: { 'application/scim+json': { schema: { type: 'object', description: 'see docs/SCIM.md and /scim/v2/Schemas' } } } });
const scimError = (description: string) => ({ description, content: { 'application/scim+json': { schema: { $ref: '#/components/schemas/ScimError' } } } });
const scimBody = (description: string) => ({ required: true, content: { 'application/scim+json': { schema: { type: 'object', description } }, 'application/json': { schema: { type: 'object', description } } } });
const scimQuery = (name: string, description: string, type = 'string') => ({ name, in: 'query', required: false, schema: { type }, description });
const scimId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ifMatch = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'the resource\'s ETag (meta.version): another version answers 412' };
/** Every SCIM operation: the SCIM token, the tag, the errors any of them can answer. */
function scimOp(summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    summary,
    tags: ['scim'],
    security: [{ scimToken: [] }],
    ...extra,
    responses: { ...responses, 401: scimError('no SCIM token, or not a live one (WWW-Authenticate: Bearer)'), 503: scimError('a dependency is unavailable (Retry-After)') },
  };
}
const listParams = (filters: string) => [
  scimQuery('filter', `eq only, joined by and: ${filters}; anything else is 400 invalidFilter`),
  scimQuery('startIndex', '1-based (default 1)', 'integer'),
  scimQuery('count', 'page size (default 100, at most 200; 0 answers totalResults only)', 'integer'),
  scimQuery('attributes', 'attributes to return'),
  scimQuery('excludedAttributes', 'attributes to leave out (e.g. members)'),
];

/**
 * SCIM 2.0 (RFC 7644), served at /scim/v2 and, identically, at /scim: each organization's IdP provisions
 * people (Users) and teams (Groups) with the organization's SCIM token. The reference is docs/SCIM.md.
 */
const SCIM_PATHS: Record<string, Record<string, unknown>> = {
  '/scim/v2/Users': {
    get: scimOp('SCIM: list the organization\'s people (ListResponse, stable order)', { 200: scimJson('ListResponse of User'), 400: scimError('bad filter (invalidFilter) or pagination (invalidValue)') }, { parameters: listParams('userName, externalId, emails.value, emails[type eq "work"].value, id') }),
    post: scimOp('SCIM: create (or revive, after a SCIM DELETE) a person', { 201: scimJson('the User (Location, ETag)'), 400: scimError('invalid User (invalidValue, invalidSyntax)'), 409: scimError('userName in use (uniqueness)') }, { requestBody: scimBody('a User') }),
  },
  '/scim/v2/Users/{id}': {
    get: scimOp('SCIM: one person', { 200: scimJson('the User (ETag)'), 404: scimError('no such person in the organization') }, { parameters: [scimId] }),
    put: scimOp('SCIM: replace a person\'s attributes; active false deprovisions', { 200: scimJson('the User'), 400: scimError('invalid User'), 404: scimError('no such person'), 409: scimError('userName in use (uniqueness)'), 412: scimError('If-Match does not match') }, { parameters: [scimId, ifMatch], requestBody: scimBody('a User') }),
    patch: scimOp('SCIM: change a person (PatchOp); active false deprovisions: keys revoked, sessions ended', { 200: scimJson('the User'), 400: scimError('invalid operation (invalidSyntax, invalidPath, invalidValue, noTarget)'), 404: scimError('no such person'), 412: scimError('If-Match does not match') }, { parameters: [scimId, ifMatch], requestBody: scimBody('a PatchOp message') }),
    delete: scimOp('SCIM: remove a person from the organization (deactivated, keys revoked, sessions ended, teams left; audit kept)', { 204: { description: 'removed' }, 404: scimError('no such person'), 412: scimError('If-Match does not match') }, { parameters: [scimId, ifMatch] }),
  },
  '/scim/v2/Groups': {
    get: scimOp('SCIM: list the organization\'s teams (ListResponse, stable order)', { 200: scimJson('ListResponse of Group'), 400: scimError('bad filter (invalidFilter) or pagination (invalidValue)') }, { parameters: listParams('displayName, externalId, id') }),
    post: scimOp('SCIM: create a team owned by SCIM', { 201: scimJson('the Group (Location, ETag)'), 400: scimError('invalid Group or member'), 409: scimError('displayName in use (uniqueness)') }, { requestBody: scimBody('a Group') }),
  },
  '/scim/v2/Groups/{id}': {
    get: scimOp('SCIM: one team', { 200: scimJson('the Group (ETag)'), 404: scimError('no such team in the organization') }, { parameters: [scimId] }),
    put: scimOp('SCIM: replace a team\'s displayName and members', { 200: scimJson('the Group'), 400: scimError('invalid Group or member'), 404: scimError('no such team'), 412: scimError('If-Match does not match') }, { parameters: [scimId, ifMatch], requestBody: scimBody('a Group') }),
    patch: scimOp('SCIM: add, remove or replace members, rename (PatchOp); answers 204', { 204: { description: 'changed' }, 400: scimError('invalid operation or member'), 404: scimError('no such team'), 412: scimError('If-Match does not match') }, { parameters: [scimId, ifMatch], requestBody: scimBody('a PatchOp message') }),
    delete: scimOp('SCIM: delete a team and its memberships', { 204: { description: 'deleted' }, 404: scimError('no such team'), 409: scimError('the team holds service accounts: delete or move them first') }, { parameters: [scimId, ifMatch] }),
  },
  '/scim/v2/ServiceProviderConfig': { get: scimOp('SCIM: what this endpoint supports (RFC 7643 §5)', { 200: scimJson('ServiceProviderConfig'), 403: scimError('a filter was given') }) },
  '/scim/v2/ResourceTypes': { get: scimOp('SCIM: the resource types, User and Group (RFC 7643 §6)', { 200: scimJson('ListResponse of ResourceType'), 403: scimError('a filter was given') }) },
  '/scim/v2/ResourceTypes/{id}': { get: scimOp('SCIM: one resource type', { 200: scimJson('ResourceType'), 404: scimError('no such resource type') }, { parameters: [scimId] }) },
  '/scim/v2/Schemas': { get: scimOp('SCIM: the attributes trackgate keeps of Users and Groups (RFC 7643 §7)', { 200: scimJson('ListResponse of Schema'), 403: scimError('a filter was given') }) },
  '/scim/v2/Schemas/{id}': { get: scimOp('SCIM: one schema, by its URN', { 200: scimJson('Schema'), 404: scimError('no such schema') }, { parameters: [scimId] }) },
};

/** trackgate's paths outside the JSON management API, documented for proxies, IdP registrations and operators. */
/** RFC 6749 §5.2's error body: every error under /oidc is answered in it (src/http/errors.ts oauthErrorJson). */
const oauthErrorSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: { type: 'string', enum: ['invalid_request', 'invalid_grant', 'unsupported_grant_type', 'temporarily_unavailable', 'server_error'] },
    error_description: { type: 'string' },
  },
};
const oauthError = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/OAuthError' } } } });

const json = (description: string, schema: unknown) => ({ description, content: { 'application/json': { schema } } });
/** /readyz's answer: each dependency's state (ok, none when not configured, or unreachable). */
const readiness = {
  type: 'object',
  required: ['status', 'checks'],
  additionalProperties: false,
  properties: { status: { enum: ['ok', 'degraded', 'unavailable'] }, checks: { type: 'object', additionalProperties: { type: 'string' }, description: 'e.g. database, redis: ok, none (not configured), unreachable' } },
};
/** Who /auth/verify and the API accept: an API key (Basic or Bearer), an access token (Bearer) or the browser session. */
const CALLER_SECURITY = [{ apiKeyBasic: [] }, { bearer: [] }, { session: [] }];
const verifyRefusals = (unauthenticated: string, forbidden: string) => ({
  400: errorResponse('forged_identity_header: a header spelled to pass for an identity header upstream'),
  401: errorResponse(unauthenticated),
  403: errorResponse(forbidden),
  429: errorResponse('rate_limited: too many failed credentials from this address (Retry-After)'),
  503: errorResponse('unavailable: the database or Redis cannot be reached (Retry-After)'),
});
/** Why a sign-in did not complete (src/errors/login-problems.ts), shown as an HTML page with the problem's code. */
const signInRefusals = {
  400: { description: 'HTML page: the IdP\'s answer was refused (the problem\'s code on the page)' },
  403: { description: 'HTML page: the account may not sign in (deactivated, another organization\'s domain, …)' },
};
/** The login page's answer to an email or organization no enabled SSO connection serves. */
const noConnection = { description: 'HTML: the login page, saying that no SSO connection serves the domain or organization' };

const OTHER_PATHS: Record<string, Record<string, unknown>> = {
  '/oidc/token': {
    post: {
      summary: 'Workload identity federation (RFC 7523 jwt-bearer): a workload token (GitHub Actions, Kubernetes, …) that a service account\'s trust rule accepts, exchanged for an access token (tga-…) of that account. No client authentication; answers Cache-Control: no-store',
      tags: ['federation'],
      security: [],
      requestBody: {
        required: true,
        content: {
          'application/x-www-form-urlencoded': {
            schema: {
              type: 'object',
              required: ['grant_type', 'assertion'],
              properties: {
                grant_type: { const: 'urn:ietf:params:oauth:grant-type:jwt-bearer' },
                assertion: { type: 'string', description: 'the workload token: a JWT signed with a public-key algorithm by an issuer a trust rule names (each is exchanged once)' },
              },
            },
          },
        },
      },
      responses: {
        200: {
          description: 'the access token: use it as `Authorization: Bearer` wherever an API key is accepted',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['access_token', 'token_type', 'expires_in'],
                properties: { access_token: { type: 'string', pattern: '^tga-[0-9A-Za-z]{40}$' }, token_type: { const: 'Bearer' }, expires_in: { type: 'integer', description: 'seconds (TRACKGATE_FEDERATION_ACCESS_TOKEN_TTL_SECONDS)' } },
              },
            },
          },
        },
        400: oauthError('invalid_request (not a form, grant_type or assertion missing or repeated), unsupported_grant_type, or invalid_grant: the assertion was refused (one fixed description; why is in the log and the audit)'),
        429: oauthError('temporarily_unavailable: too many refused exchanges from this address (Retry-After)'),
        503: oauthError("temporarily_unavailable: the token's issuer or the database cannot be reached (Retry-After)"),
      },
    },
  },
  '/healthz': { get: { summary: 'Liveness', tags: ['operations'], security: [], responses: { 200: json('the process is up', { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { const: 'ok' } } }) } } },
  '/readyz': {
    get: {
      summary: 'Readiness: database (and Redis when configured) reachable',
      tags: ['operations'],
      security: [],
      responses: { 200: json('ready (degraded: a dependency that is not required is unreachable)', readiness), 503: json('a required dependency is unreachable', readiness) },
    },
  },
  '/metrics': {
    get: {
      summary: 'Prometheus metrics, for the peers of TRACKGATE_METRICS_ALLOW (loopback by default) asking directly',
      tags: ['operations'],
      security: [],
      responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, 404: errorResponse('not_found: a peer not allowed, or a request a proxy relayed (X-Forwarded-For, Forwarded or X-Real-IP)') },
    },
  },
  '/auth/verify': {
    get: {
      summary: 'Forward auth for nginx auth_request, Traefik ForwardAuth, Envoy ext_authz',
      tags: ['gateway'],
      security: CALLER_SECURITY,
      parameters: [
        { name: 'X-Original-URI', in: 'header', required: false, schema: { type: 'string' }, description: 'from a trusted proxy: where the browser was going (return_to)' },
        { name: 'X-WANDB-USERNAME', in: 'header', required: false, schema: { type: 'string' }, description: 'with a service-account key: the team member a run is attributed to' },
      ],
      responses: {
        200: { description: 'allowed; identity in the response headers (only X-Trackgate-Assertion when TRACKGATE_IDENTITY_HEADERS=assertion)', headers: identityHeaders },
        ...verifyRefusals('no or bad credentials (WWW-Authenticate); a browser also gets Location: /login?return_to=...', 'known caller, not allowed (e.g. attribution to a non-member)'),
      },
    },
  },
  '/auth/verify/{original_path}': {
    description:
      "Forward auth in Envoy ext_authz's path-prefix form (path_prefix: /auth/verify): any method, the original request's method; the original path and query follow the prefix. Answers as GET /auth/verify does; the original method and path need no trusted proxy here, since they are the check request's own.",
    get: {
      summary: 'Forward auth, Envoy ext_authz path-prefix form (any method: the original one)',
      tags: ['gateway'],
      security: CALLER_SECURITY,
      parameters: [{ name: 'original_path', in: 'path', required: true, schema: { type: 'string' }, description: 'the original path and query, after /auth/verify' }],
      responses: {
        200: { description: 'allowed; identity in the response headers', headers: identityHeaders },
        ...verifyRefusals('no or bad credentials; a browser also gets Location: /login?return_to=<original path>', 'known caller, not allowed (attribution to a non-member; a cross-site state change with the session cookie)'),
      },
    },
  },
  '/.well-known/jwks.json': {
    get: {
      summary: 'Public keys of the identity assertions (current and previous)',
      tags: ['gateway'],
      security: [],
      responses: {
        200: {
          description: 'a JWK Set (RFC 7517 §5) of ES256 public keys',
          content: { 'application/jwk-set+json': { schema: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object', required: ['kty', 'kid'], properties: { kty: { const: 'EC' }, crv: { const: 'P-256' }, kid: { type: 'string' }, alg: { const: 'ES256' }, use: { const: 'sig' } } } } } } } },
        },
      },
    },
  },
  '/login': {
    get: { summary: 'Login page: email → home realm discovery; ?org= or ?email= start SSO when followed from trackgate\'s own pages with nobody signed in, else a "Continue to sign in" page (login CSRF); ?return_to= same-origin paths only', tags: ['browser'], security: [], responses: { 200: { description: 'HTML' }, 303: { description: 'to the identity provider' }, 404: noConnection, 429: { description: 'too many login starts from this address (Retry-After)' } } },
    post: { summary: 'The login forms (email, or the Continue page): org or email, return_to, form_token (the browser\'s double-submit token)', tags: ['browser'], security: [], responses: { 303: { description: 'to the identity provider' }, 403: { description: 'no or wrong form token (csrf_failed)' }, 404: noConnection, 429: { description: 'too many login starts from this address (Retry-After)' } } },
  },
  '/login/callback': {
    get: { summary: 'SSO callback: the page that posts a fragment response back, and the code-flow callback', tags: ['browser'], security: [], responses: { 200: { description: 'HTML' }, 303: { description: 'signed in: to return_to' }, ...signInRefusals } },
    post: { summary: 'SSO callback for response_mode=form_post (and the fragment page posting back)', tags: ['browser'], security: [], responses: { 303: { description: 'signed in: to return_to' }, ...signInRefusals } },
  },
  '/login/saml/{id}/metadata': {
    get: {
      summary: "A SAML connection's SP metadata (its SP entity ID, the ACS URL, HTTP-POST binding): what the IdP is configured from",
      tags: ['browser'],
      security: [],
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the SSO connection id' }],
      responses: { 200: { description: 'SAML 2.0 metadata (an EntityDescriptor with an SPSSODescriptor)', content: { 'application/samlmetadata+xml': { schema: { type: 'string' } } } }, 404: errorResponse('not_found: no SAML connection has this id') },
    },
  },
  '/login/saml/{id}/acs': {
    post: {
      summary: "A SAML connection's Assertion Consumer Service: the IdP's response (form field SAMLResponse, HTTP-POST binding), up to 512 KB",
      tags: ['browser'],
      security: [],
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the SSO connection id' }],
      requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', required: ['SAMLResponse'], properties: { SAMLResponse: { type: 'string', description: 'base64 of the SAML response' }, RelayState: { type: 'string' } } } } } },
      responses: { 303: { description: "signed in: to return_to; or, for an admin's Test login, to its report" }, ...signInRefusals, 404: { description: 'HTML page: no SAML connection has this id' } },
    },
  },
  '/logout': {
    post: {
      summary: 'End the browser session (with a live session, its CSRF token as the form field)',
      tags: ['browser'],
      // Signing out without a session (or with one that timed out) succeeds as well.
      security: [{ session: [] }, {}],
      responses: { 204: { description: 'signed out, for a client that asks for JSON' }, 303: { description: 'signed out: to /login?logged_out=1' }, 403: { description: "HTML page: csrf_failed, the session's CSRF token missing" } },
    },
  },
  '/{tracking API path}': {
    description: 'Every other path is proxied to TRACKGATE_UPSTREAM_URL after authentication, without the client\'s credentials and with the identity headers of /auth/verify.',
  },
};

/**
 * What every route answers beside what its handler declares, from its declaration alone: a body or query is
 * validated (400; a body is also bounded, 413), a path names resources that may not exist or be visible (404),
 * an authenticated route has the Authenticator's refusals (401; 403 for sso_required and a session's write
 * without its CSRF token, and the roles and principal types the service refuses; 429 from the failure limiter),
 * and any route may find a dependency or the management worker unavailable (503).
 */
function routeRefusals(s: RouteSpec): Record<number, string> {
  const out: Record<number, string> = {};
  if (s.body || s.query) out[400] = 'validation_failed (`problems` names each field) or bad_request (malformed JSON)';
  if (s.auth === 'required') {
    out[401] = 'no credentials, or not valid ones (WWW-Authenticate): unauthenticated, invalid_credentials, invalid_key, key_expired, key_revoked, invalid_token, access_token_expired, access_token_revoked, account_deactivated';
    out[403] =
      "the caller may not do this: insufficient_role (an organization or team role too low), not_a_person (a service account's key or token where only a person may act), sso_required (a person's API key in a browser while the organization requires SSO), csrf_failed (a session's write without X-CSRF-Token)";
  }
  const params = [...s.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]);
  if (params.length) out[404] = `not_found: the ${params.join(' or ')} named does not exist, or the caller may not know that it does`;
  if (s.body) out[413] = 'payload_too_large: the body is over 64 KB';
  if (s.auth === 'required') out[429] = 'rate_limited: too many failed credentials from this address (Retry-After)';
  out[503] = 'unavailable (the database or Redis cannot be reached) or management_unavailable (the management worker is restarting); Retry-After';
  return out;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * An operation's id, from its method and path alone (so it stays as long as the operation does):
 * `get /orgs/{org}/users` → getOrgsByOrgUsers. The management API's paths are taken without their
 * base path; every other path whole (`get /scim/v2/Users/{id}` → getScimV2UsersById).
 */
function operationIdOf(method: string, path: string): string {
  const words = path
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      const param = /^\{(.+)\}$/.exec(segment);
      const word = (param?.[1] ?? segment)
        .split(/[^A-Za-z0-9]+/)
        .filter(Boolean)
        .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
        .join('');
      return param ? `By${word}` : word;
    });
  return method + words.join('');
}

/** Gives every operation of `paths` its operationId; two operations with one id are a bug in the declarations. */
function nameOperations(paths: Record<string, Record<string, unknown>>, basePath: string): void {
  const seen = new Map<string, string>();
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method] as { operationId?: string } | undefined;
      if (!op) continue;
      const id = (op.operationId ??= operationIdOf(method, path.startsWith(basePath + '/') ? path.slice(basePath.length) : path));
      const other = seen.get(id);
      if (other) throw new Error(`OpenAPI: operationId ${id} of ${method.toUpperCase()} ${path} is also that of ${other}`);
      seen.set(id, `${method.toUpperCase()} ${path}`);
    }
  }
}

/** Builds the OpenAPI 3.1 document from the route declarations. */
export function buildOpenApi(basePath: string, specs: RouteSpec[], info: { version: string; publicUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const s of specs) {
    const path = basePath + s.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const params = [...s.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (s.query) {
      const q = jsonSchema(s.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema } as never);
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(s.responses)) {
      // An error a route declares without a schema is answered with the one error body (errorJson).
      responses[status] = r.schema ? { description: r.description, content: { 'application/json': { schema: jsonSchema(r.schema, 'output') } } } : Number(status) >= 400 ? errorResponse(r.description) : { description: r.description };
    }
    // What the route declares itself says more (which codes, when) than the general description.
    for (const [status, description] of Object.entries(routeRefusals(s))) responses[status] ??= errorResponse(description);
    (paths[path] ??= {})[s.method] = {
      summary: s.summary,
      tags: [s.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(s.body, 'input') } } } } : {}),
      responses: Object.fromEntries(Object.entries(responses).sort(([x], [y]) => Number(x) - Number(y))),
      security: s.auth === 'required' ? CALLER_SECURITY : [],
    };
  }
  // Copies: nameOperations writes into them, and the constants serve every document built.
  const all = { ...paths, ...structuredClone(OTHER_PATHS), ...structuredClone(SCIM_PATHS) };
  nameOperations(all, basePath);
  return {
    openapi: '3.1.0',
    info: {
      title: 'trackgate management API',
      version: info.version,
      description:
        'Identity gateway of the tracking service: organizations, teams, users, API keys, SSO connections, SCIM tokens; and SCIM 2.0 provisioning under /scim/v2 (tag scim, authenticated by an organization\'s SCIM token). Authenticate with HTTP Basic (user "api", password = API key), a Bearer API key or access token, or the browser session (writes then need the X-CSRF-Token header). Errors are `{"error": {"code", "message", "request_id"}}` (schema Error; the codes are the error catalogue\'s), RFC 7644\'s under /scim and RFC 6749\'s under /oidc. A method a path does not serve is answered 405 with Allow.',
    },
    servers: [{ url: info.publicUrl }],
    components: {
      securitySchemes: {
        apiKeyBasic: { type: 'http', scheme: 'basic', description: 'user "api", password = the API key' },
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'trackgate.sid' },
        scimToken: { type: 'http', scheme: 'bearer', description: 'an organization\'s SCIM token (tgscim-…): accepted under /scim only, and nothing else is accepted there' },
      },
      schemas: { Error: errorSchema, ScimError: scimErrorSchema, OAuthError: oauthErrorSchema },
    },
    paths: all,
  };
}
