import type { Request } from 'express';
import { errors } from '../errors/app-error.ts';
import { GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, USER_SCHEMA, groupSchema, userSchema } from './scim-schemas.ts';
import { sendScim } from './scim.router.ts';
import type { ScimRouteContext } from './scim.router.ts';

const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
/** The largest page /Users and /Groups answer (their `count` is capped to it). */
export const SCIM_MAX_RESULTS = 200;

/** A ListResponse of the whole (short) list: discovery lists are not paginated (RFC 7644 §4). */
function listOf(resources: unknown[]) {
  return { schemas: [LIST_RESPONSE_SCHEMA], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources };
}

/**
 * RFC 7644 §4: "If a filter is provided, the service provider SHOULD respond with HTTP status code 403", so
 * that an IdP does not take a filter it sent for one that was applied. Parameter names vary in case by IdP.
 */
function refuseFilter(req: Request): void {
  if (Object.keys(req.query).some((k) => k.toLowerCase() === 'filter')) throw errors.forbidden('the SCIM discovery endpoints do not take a filter');
}

/**
 * /ServiceProviderConfig, /ResourceTypes, /Schemas (RFC 7644 §4, RFC 7643 §5–7): what an IdP reads to learn
 * what this endpoint does. Authenticated like every SCIM path (the router's token check runs first), since
 * nothing here is needed before an admin has a token. They answer the same whatever the organization.
 */
export function registerScimDiscoveryRoutes(ctx: ScimRouteContext): void {
  const { router, baseUrl } = ctx;

  const serviceProviderConfig = {
    schemas: [SPC_SCHEMA],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: SCIM_MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'The organization\'s SCIM token (tgscim-…), created by an org admin on /admin or through the management API, sent as "Authorization: Bearer <token>".',
        specUri: 'https://www.rfc-editor.org/rfc/rfc6750',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };

  const resourceTypes = [
    { id: 'User', name: 'User', endpoint: '/Users', description: 'A person of the organization', schema: USER_SCHEMA },
    { id: 'Group', name: 'Group', endpoint: '/Groups', description: 'A team of the organization', schema: GROUP_SCHEMA },
  ].map((t) => ({ schemas: [RESOURCE_TYPE_SCHEMA], ...t, schemaExtensions: [], meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${t.id}` } }));

  // describe() gives RFC 7643 §7's representation of the attributes we keep, with meta.location under /Schemas.
  const schemas = [userSchema, groupSchema].map((s) => s.describe(`${baseUrl}/Schemas`) as { id: string });

  router.get('/ServiceProviderConfig', (req, res) => {
    refuseFilter(req);
    sendScim(res, 200, serviceProviderConfig);
  });
  router.get('/ResourceTypes', (req, res) => {
    refuseFilter(req);
    sendScim(res, 200, listOf(resourceTypes));
  });
  router.get('/ResourceTypes/:id', (req, res) => {
    const t = resourceTypes.find((r) => r.id.toLowerCase() === req.params.id.toLowerCase());
    if (!t) throw errors.notFound(`SCIM resource type "${req.params.id}"`);
    sendScim(res, 200, t);
  });
  router.get('/Schemas', (req, res) => {
    refuseFilter(req);
    sendScim(res, 200, listOf(schemas));
  });
  router.get('/Schemas/:id', (req, res) => {
    // Schema URNs are case-insensitive (RFC 7643 §2.1 compares attribute names so; IdPs vary).
    const s = schemas.find((x) => x.id.toLowerCase() === req.params.id.toLowerCase());
    if (!s) throw errors.notFound(`SCIM schema "${req.params.id}"`);
    sendScim(res, 200, s);
  });
}
