import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { fields } from '../http/validation.ts';
import { TENANT_ID_PATTERN } from './oidc/issuer.ts';
import type { SessionManager } from './session-store.ts';
import type { SaveOutcome, SsoService } from './sso.service.ts';
import type { IdentitiesService } from './identities.service.ts';
import { connectionOut, connectionTestOut, identityOut } from './sso.responses.ts';

const claimName = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const domain = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/, 'must be an email domain such as example.com');
const groupRule = z.strictObject({
  group: z.string().trim().min(1, 'must not be empty').max(256),
  team: fields.entityName,
  role: fields.role,
});
const base = {
  // z.url() as a check after trim/min/max is what the deprecated `.url()` method added: the URL is checked
  // once trimmed, and the issues come in the same order.
  issuer: z.string().trim().min(1, 'must not be empty').max(2000).check(z.url({ error: 'must be a URL (https://...)' })),
  client_id: z.string().trim().min(1, 'must not be empty').max(500),
  flow: z.enum(['implicit', 'code'], { error: 'must be implicit or code' }),
  response_mode: z.enum(['form_post', 'fragment'], { error: 'must be form_post or fragment' }),
  client_secret: z.string().min(1, 'must not be empty').max(2000).nullable(),
  scopes: z.array(z.string().trim().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token')).max(30),
  claims: z.strictObject({ email: claimName.optional(), name: claimName.optional(), username: claimName.optional(), groups: claimName.optional() }),
  domains: z.array(domain).max(100),
  group_roles: z.array(groupRule).max(500),
  jit: z.boolean(),
  allowed_tenant_ids: z.array(z.string().trim().regex(TENANT_ID_PATTERN, 'must be a tenant ID (a GUID)')).max(100),
  enabled: z.boolean(),
};

/** A SAML connection's IdP side: metadata (URL or pasted XML), or entity ID, SSO URL and certificates by hand; and what must be signed. */
const samlFields = {
  metadata_url: z.string().trim().min(1, 'must not be empty').max(2000).check(z.url({ error: 'must be a URL (https://...)' })),
  // The parser holds the real limit (256 KB, answered field by field); this one only keeps a body from being absurd.
  metadata_xml: z.string().min(1, 'must not be empty').max(1024 * 1024, 'must be at most 1 MB'),
  entity_id: z.string().trim().min(1, 'must not be empty').max(1024),
  sso_url: z.string().trim().min(1, 'must not be empty').max(2000).check(z.url({ error: 'must be a URL (https://...)' })),
  certificates: z.array(z.string().max(20_000)).max(10),
  want_assertions_signed: z.boolean(),
  want_response_signed: z.boolean(),
  allow_idp_initiated: z.boolean(),
};

/** Also parses the admin page's SSO form (src/web), so both say the same about a bad field. */
export const createConnectionBody = z.strictObject({
  kind: z.literal('oidc').optional(),
  ...base,
  flow: base.flow.default('implicit'),
  response_mode: base.response_mode.default('form_post'),
  client_secret: base.client_secret.optional(),
  scopes: base.scopes.optional(),
  claims: base.claims.optional(),
  domains: base.domains.default([]),
  group_roles: base.group_roles.default([]),
  jit: base.jit.default(true),
  allowed_tenant_ids: base.allowed_tenant_ids.optional(),
  enabled: base.enabled.default(true),
});
/** A SAML connection (kind "saml"); also parses the admin page's SAML form. */
export const createSamlConnectionBody = z.strictObject({
  kind: z.literal('saml'),
  metadata_url: samlFields.metadata_url.optional(),
  metadata_xml: samlFields.metadata_xml.optional(),
  entity_id: samlFields.entity_id.optional(),
  sso_url: samlFields.sso_url.optional(),
  certificates: samlFields.certificates.optional(),
  want_assertions_signed: samlFields.want_assertions_signed.default(true),
  want_response_signed: samlFields.want_response_signed.default(false),
  allow_idp_initiated: samlFields.allow_idp_initiated.default(false),
  claims: base.claims.optional(),
  domains: base.domains.default([]),
  group_roles: base.group_roles.default([]),
  jit: base.jit.default(true),
  enabled: base.enabled.default(true),
});
const createBody = z.discriminatedUnion('kind', [createConnectionBody, createSamlConnectionBody]);
const patchFields = { ...base, ...samlFields };
export const patchBody = z.strictObject(Object.fromEntries(Object.entries(patchFields).map(([k, v]) => [k, (v as z.ZodType).optional()])) as { [K in keyof typeof patchFields]: z.ZodOptional<(typeof patchFields)[K]> });

/** The saved connection, or sso_configuration_invalid with every problem (answered as `error.problems`, like any validation error's). */
function outcome<S extends 200 | 201>(result: SaveOutcome, status: S) {
  if (result.ok) return { status, body: result.connection };
  throw new AppError('sso_configuration_invalid', `the connection was not saved: ${result.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, { problems: result.problems });
}

export function registerSsoRoutes(api: ApiRouter, sso: SsoService, sessions: SessionManager, identities: IdentitiesService): void {
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/users/:username/identities',
      summary: "The IdP identities linked to a user's account (org admin)",
      tag: 'sso',
      auth: 'required',
      responses: { 200: { description: 'identities', schema: z.object({ identities: z.array(identityOut) }) }, 404: { description: 'no such user' } },
    },
    async ({ actor, params }) => ({ status: 200, body: { identities: await identities.list(actor, params.org, params.username) } }),
  );
  api.add(
    {
      method: 'delete',
      path: '/orgs/:org/users/:username/identities/:id',
      summary: "Unlink an IdP identity from a user's account (org admin; the operator's only by the operator): the person's sessions end, and their next SSO sign-in may link a new identity by email. Audited",
      tag: 'sso',
      auth: 'required',
      responses: { 204: { description: 'unlinked' }, 403: { description: "the operator's identity, by someone else" }, 404: { description: 'no such user or identity' } },
    },
    async ({ actor, params }) => {
      await identities.unlink(actor, params.org, params.username, params.id);
      return undefined;
    },
  );

  api.add(
    { method: 'get', path: '/orgs/:org/sso', summary: 'SSO connections of an organization (org admin)', tag: 'sso', auth: 'required', responses: { 200: { description: 'connections', schema: z.object({ connections: z.array(connectionOut) }) } } },
    async ({ actor, params }) => ({ status: 200, body: { connections: await sso.list(actor, params.org) } }),
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/sso',
      summary: 'Create an SSO connection (org admin): OIDC (runs discovery) or SAML 2.0 (kind "saml": from the IdP\'s metadata_url or metadata_xml, or entity_id, sso_url and certificates); reports every problem, field by field',
      tag: 'sso',
      auth: 'required',
      body: createBody,
      responses: {
        201: { description: 'created; register callback_uri in the IdP (SAML: saml.acs_url and saml.sp_entity_id, or saml.sp_metadata_url)', schema: connectionOut },
        400: { description: 'validation_failed: a malformed field, or SAML metadata that cannot be used (error.problems); nothing saved' },
        422: { description: 'sso_configuration_invalid: discovery or references found problems (error.problems); nothing saved' },
      },
    },
    async ({ actor, params, body }) => outcome(await sso.create(actor, params.org, body), 201),
  );
  api.add(
    { method: 'get', path: '/orgs/:org/sso/:id', summary: 'One SSO connection (org admin)', tag: 'sso', auth: 'required', responses: { 200: { description: 'the connection', schema: connectionOut }, 404: { description: 'no such connection' } } },
    async ({ actor, params }) => ({ status: 200, body: await sso.get(actor, params.org, params.id) }),
  );
  api.add(
    {
      method: 'patch',
      path: '/orgs/:org/sso/:id',
      summary: 'Change an SSO connection (org admin); client_secret: null removes the secret',
      tag: 'sso',
      auth: 'required',
      body: patchBody,
      responses: { 200: { description: 'the connection', schema: connectionOut }, 404: { description: 'no such connection' }, 422: { description: 'sso_configuration_invalid: problems (error.problems); nothing saved' } },
    },
    async ({ actor, params, body }) => outcome(await sso.update(actor, params.org, params.id, body), 200),
  );
  api.add(
    { method: 'delete', path: '/orgs/:org/sso/:id', summary: 'Delete an SSO connection (org admin)', tag: 'sso', auth: 'required', responses: { 204: { description: 'deleted' }, 404: { description: 'no such connection' } } },
    async ({ actor, params }) => {
      await sso.delete(actor, params.org, params.id);
      return undefined;
    },
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/sso/:id/test',
      summary: "Rerun discovery for a connection (org admin) and report what is wrong; refreshes the stored IdP metadata",
      tag: 'sso',
      auth: 'required',
      responses: {
        200: {
          description: 'the result (ok: false lists the problems)',
          schema: connectionTestOut,
        },
        404: { description: 'no such connection' },
      },
    },
    async ({ actor, params }) => ({ status: 200, body: await sso.test(actor, params.org, params.id) }),
  );
  api.add(
    {
      method: 'get',
      path: '/session',
      summary: "The browser session: who, until when, and the CSRF token that state-changing requests with the session cookie must send as X-CSRF-Token",
      tag: 'sso',
      auth: 'required',
      responses: {
        200: { description: 'the session', schema: z.object({ username: z.string(), org: z.string(), csrf_token: z.string(), login_at: z.string(), connection_id: z.string().nullable() }) },
        400: { description: 'the request was not authenticated by a session cookie' },
      },
    },
    async ({ req, actor }) => {
      if (actor.principal.via !== 'session') throw errors.badRequest('this request is not authenticated by a browser session');
      const s = await sessions.read(req);
      if (!s) throw errors.unauthenticated();
      return { status: 200, body: { username: actor.principal.username, org: actor.principal.orgSlug, csrf_token: s.data.csrfToken, login_at: new Date(s.data.loginAt).toISOString(), connection_id: s.data.connectionId ?? null } };
    },
  );
}
