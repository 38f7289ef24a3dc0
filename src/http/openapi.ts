import { z } from 'zod';
import type { RouteSpec } from './api-router.ts';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'request_id'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        request_id: { type: 'string' },
        problems: {
          type: 'array',
          description: 'what is wrong, field by field: with validation_failed and sso_configuration_invalid',
          items: {
            type: 'object',
            required: ['field', 'code', 'message'],
            properties: { field: { type: 'string', description: 'dotted path of the field; empty for the request as a whole' }, code: { type: 'string' }, message: { type: 'string' } },
          },
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
  properties: {
    error: { type: 'string', enum: ['invalid_request', 'invalid_grant', 'unsupported_grant_type', 'temporarily_unavailable', 'server_error'] },
    error_description: { type: 'string' },
  },
};
const oauthError = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/OAuthError' } } } });

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
  '/healthz': { get: { summary: 'Liveness', tags: ['operations'], security: [], responses: { 200: { description: 'the process is up' } } } },
  '/readyz': { get: { summary: 'Readiness: database (and Redis when configured) reachable', tags: ['operations'], security: [], responses: { 200: { description: 'ready' }, 503: { description: 'a dependency is unreachable' } } } },
  '/metrics': { get: { summary: 'Prometheus metrics (answered to loopback and trusted proxies only)', tags: ['operations'], security: [], responses: { 200: { description: 'text exposition format' } } } },
  '/auth/verify': {
    get: {
      summary: 'Forward auth for nginx auth_request, Traefik ForwardAuth, Envoy ext_authz',
      tags: ['gateway'],
      parameters: [
        { name: 'X-Original-URI', in: 'header', required: false, schema: { type: 'string' }, description: 'from a trusted proxy: where the browser was going (return_to)' },
        { name: 'X-WANDB-USERNAME', in: 'header', required: false, schema: { type: 'string' }, description: 'with a service-account key: the team member a run is attributed to' },
      ],
      responses: {
        200: { description: 'allowed; identity in the response headers (only X-Trackgate-Assertion when TRACKGATE_IDENTITY_HEADERS=assertion)', headers: identityHeaders },
        401: { ...errorResponse('no or bad credentials (WWW-Authenticate); a browser also gets Location: /login?return_to=...') },
        403: errorResponse('known caller, not allowed (e.g. attribution to a non-member)'),
        429: errorResponse('too many failed attempts from this address'),
      },
    },
  },
  '/auth/verify/{original_path}': {
    description:
      "Forward auth in Envoy ext_authz's path-prefix form (path_prefix: /auth/verify): any method, the original request's method; the original path and query follow the prefix. Answers as GET /auth/verify does; the original method and path need no trusted proxy here, since they are the check request's own.",
    get: {
      summary: 'Forward auth, Envoy ext_authz path-prefix form (any method: the original one)',
      tags: ['gateway'],
      parameters: [{ name: 'original_path', in: 'path', required: true, schema: { type: 'string' }, description: 'the original path and query, after /auth/verify' }],
      responses: {
        200: { description: 'allowed; identity in the response headers', headers: identityHeaders },
        401: { ...errorResponse('no or bad credentials; a browser also gets Location: /login?return_to=<original path>') },
        403: errorResponse('known caller, not allowed (attribution to a non-member; a cross-site state change with the session cookie)'),
        429: errorResponse('too many failed attempts from this address'),
      },
    },
  },
  '/.well-known/jwks.json': { get: { summary: 'Public keys of the identity assertions (current and previous)', tags: ['gateway'], security: [], responses: { 200: { description: 'a JWK Set' } } } },
  '/login': {
    get: { summary: 'Login page: email → home realm discovery; ?org= or ?email= start SSO when followed from trackgate\'s own pages with nobody signed in, else a "Continue to sign in" page (login CSRF); ?return_to= same-origin paths only', tags: ['browser'], security: [], responses: { 200: { description: 'HTML' }, 303: { description: 'to the identity provider' }, 429: { description: 'too many login starts from this address (Retry-After)' } } },
    post: { summary: 'The login forms (email, or the Continue page): org or email, return_to, form_token (the browser\'s double-submit token)', tags: ['browser'], security: [], responses: { 303: { description: 'to the identity provider' }, 403: { description: 'no or wrong form token (csrf_failed)' }, 429: { description: 'too many login starts from this address (Retry-After)' } } },
  },
  '/login/callback': {
    get: { summary: 'SSO callback: the page that posts a fragment response back, and the code-flow callback', tags: ['browser'], security: [], responses: { 200: { description: 'HTML' }, 303: { description: 'signed in: to return_to' } } },
    post: { summary: 'SSO callback for response_mode=form_post (and the fragment page posting back)', tags: ['browser'], security: [], responses: { 303: { description: 'signed in: to return_to' }, 400: { description: 'HTML error page naming the problem' } } },
  },
  '/logout': { post: { summary: 'End the browser session (CSRF token required)', tags: ['browser'], responses: { 303: { description: 'signed out' } } } },
  '/{tracking API path}': {
    description: 'Every other path is proxied to TRACKGATE_UPSTREAM_URL after authentication, without the client\'s credentials and with the identity headers of /auth/verify.',
  },
};

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
    if (s.body) responses['400'] ??= { description: 'invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    if (s.auth === 'required') responses['401'] ??= { description: 'missing or invalid credentials', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    // The management API runs in a worker thread that is started again if it dies; meanwhile it answers this.
    responses['503'] ??= { description: 'management_unavailable: the management service is restarting (Retry-After: 1)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    (paths[path] ??= {})[s.method] = {
      summary: s.summary,
      tags: [s.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(s.body, 'input') } } } } : {}),
      responses,
      ...(s.auth === 'required' ? { security: [{ apiKeyBasic: [] }, { bearer: [] }, { session: [] }] } : { security: [] }),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'trackgate management API',
      version: info.version,
      description:
        'Identity gateway of the tracking service: organizations, teams, users, API keys, SSO connections, SCIM tokens; and SCIM 2.0 provisioning under /scim/v2 (tag scim, authenticated by an organization\'s SCIM token). Authenticate with HTTP Basic (user "api", password = API key), a Bearer API key or access token, or the browser session (writes then need the X-CSRF-Token header).',
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
    paths: { ...paths, ...OTHER_PATHS, ...SCIM_PATHS },
  };
}
