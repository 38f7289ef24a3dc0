import { listResponse, readListQuery, selectAttributes } from './scim-list.ts';
import type { ListQuery } from './scim-list.ts';
import { GROUP_SCHEMA } from './scim-schemas.ts';
import type { ScimGroupRecord, ScimGroupsService } from './scim-groups.service.ts';
import { ifMatchOf, scimClientOf, sendScim } from './scim.router.ts';
import type { ScimRouteContext } from './scim.router.ts';

/**
 * Whether the answer needs members (`excludedAttributes=members`, or `attributes=` without them, leave them
 * out): Entra ID reads big groups that way, and not loading thousands of members is the point of it.
 */
function wantsMembers(query: Pick<ListQuery, 'attributes' | 'excludedAttributes'>): boolean {
  const isMembers = (a: string) => a === 'members' || a.startsWith('members.');
  if (query.excludedAttributes.some(isMembers)) return false;
  return query.attributes.length === 0 || query.attributes.some(isMembers);
}

/** The Group resource (RFC 7643 §4.2) of a record. */
function groupResource(baseUrl: string, g: ScimGroupRecord): Record<string, unknown> {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    displayName: g.displayName,
    ...(g.externalId !== null ? { externalId: g.externalId } : {}),
    ...(g.members ? { members: g.members.map((m) => ({ value: m.id, display: m.username, $ref: `${baseUrl}/Users/${m.id}`, type: 'User' })) } : {}),
    meta: { resourceType: 'Group', created: g.created, lastModified: g.lastModified, location: `${baseUrl}/Groups/${g.id}`, version: g.version },
  };
}

/** SCIM /Groups over HTTP. Group PATCH answers 204 (Entra ID requires it; Okta accepts it). */
export function registerScimGroupsRoutes(ctx: ScimRouteContext, service: ScimGroupsService): void {
  const { router, baseUrl } = ctx;

  router.get('/Groups', async (req, res) => {
    const query = readListQuery(req.query);
    const r = await service.list(scimClientOf(res), query, wantsMembers(query));
    sendScim(res, 200, listResponse(r.resources.map((g) => selectAttributes(groupResource(baseUrl, g), query)), r.total, query.startIndex));
  });

  router.get('/Groups/:id', async (req, res) => {
    const query = readListQuery(req.query);
    const g = await service.get(scimClientOf(res), req.params.id, wantsMembers(query));
    sendScim(res, 200, selectAttributes(groupResource(baseUrl, g), query), g.version);
  });

  router.post('/Groups', async (req, res) => {
    const g = await service.create(scimClientOf(res), req.body);
    res.setHeader('Location', `${baseUrl}/Groups/${g.id}`);
    sendScim(res, 201, groupResource(baseUrl, g), g.version);
  });

  router.put('/Groups/:id', async (req, res) => {
    const g = await service.replace(scimClientOf(res), req.params.id, req.body, ifMatchOf(req));
    sendScim(res, 200, groupResource(baseUrl, g), g.version);
  });

  router.patch('/Groups/:id', async (req, res) => {
    const g = await service.patch(scimClientOf(res), req.params.id, req.body, ifMatchOf(req));
    res.setHeader('ETag', g.version);
    res.status(204).end();
  });

  router.delete('/Groups/:id', async (req, res) => {
    await service.delete(scimClientOf(res), req.params.id, ifMatchOf(req));
    res.status(204).end();
  });
}
