import type { Request } from 'express';
import { AppError } from '../errors/app-error.ts';
import { GROUP_SCHEMA, LIST_RESPONSE_SCHEMA } from './scim-schemas.ts';
import type { ScimGroupRecord, ScimGroupsService } from './scim-groups.service.ts';
import { scimClientOf, sendScim } from './scim.router.ts';
import type { ScimRouteContext } from './scim.router.ts';

/** GET /Groups answers at most this many per page (ServiceProviderConfig's filter.maxResults). */
const MAX_COUNT = 200;
const DEFAULT_COUNT = 100;

// Private versions of the query and list helpers the "users" side writes too: kept in these functions so that
// the merge can swap them for the shared ones.

/** A query parameter by name, case-insensitively (IdPs send startIndex, startindex, StartIndex…); the first if repeated. */
function groupsQueryParam(req: Request, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    if (k.toLowerCase() !== want) continue;
    const first: unknown = Array.isArray(v) ? (v as unknown[])[0] : v;
    return typeof first === 'string' ? first : undefined;
  }
  return undefined;
}

function groupsIntParam(req: Request, name: string): number | undefined {
  const raw = groupsQueryParam(req, name);
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*-?\d+\s*$/.test(raw)) throw new AppError('scim_invalid_value', `${name} must be an integer`);
  return Number(raw);
}

/** startIndex (1-based, default 1, below 1 read as 1) and count (default 100, at most 200, negative read as 0). */
function groupsPagination(req: Request): { startIndex: number; count: number } {
  const startIndex = Math.max(1, groupsIntParam(req, 'startIndex') ?? 1);
  const count = Math.min(MAX_COUNT, Math.max(0, groupsIntParam(req, 'count') ?? DEFAULT_COUNT));
  return { startIndex, count };
}

/** Whether the answer includes members: `excludedAttributes=members` leaves them out, and so does `attributes=` without them. */
function groupsWantsMembers(req: Request): boolean {
  const names = (v: string | undefined) => (v ?? '').split(',').map((a) => a.trim().toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:group:/, '')).filter((a) => a !== '');
  const attributes = names(groupsQueryParam(req, 'attributes'));
  const excluded = names(groupsQueryParam(req, 'excludedAttributes'));
  if (excluded.some((a) => a === 'members' || a.startsWith('members.'))) return false;
  if (attributes.length > 0 && !attributes.some((a) => a === 'members' || a.startsWith('members.'))) return false;
  return true;
}

/** The attributes a client asked for (`attributes=`): id, schemas and meta always come. Null: all of them. */
function groupsAttributeSelection(req: Request): Set<string> | null {
  const raw = groupsQueryParam(req, 'attributes');
  if (raw === undefined || raw.trim() === '') return null;
  return new Set(raw.split(',').map((a) => a.trim().toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:group:/, '').replace(/\..*$/, '')));
}

function groupsListResponse(total: number, startIndex: number, resources: unknown[]): Record<string, unknown> {
  return { schemas: [LIST_RESPONSE_SCHEMA], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** The Group resource (RFC 7643 §4.2) of a record. */
function groupResource(baseUrl: string, g: ScimGroupRecord, only: Set<string> | null = null): Record<string, unknown> {
  const keep = (a: string) => only === null || only.has(a.toLowerCase());
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    ...(keep('displayName') ? { displayName: g.displayName } : {}),
    ...(g.externalId !== null && keep('externalId') ? { externalId: g.externalId } : {}),
    ...(g.members ? { members: g.members.map((m) => ({ value: m.id, display: m.username, $ref: `${baseUrl}/Users/${m.id}`, type: 'User' })) } : {}),
    meta: { resourceType: 'Group', created: g.created, lastModified: g.lastModified, location: `${baseUrl}/Groups/${g.id}`, version: g.version },
  };
}

function ifMatchOf(req: Request): string | undefined {
  return req.get('if-match') ?? undefined;
}

/** SCIM /Groups over HTTP. Group PATCH answers 204 (Entra ID requires it; Okta accepts it). */
export function registerScimGroupsRoutes(ctx: ScimRouteContext, service: ScimGroupsService): void {
  const { router, baseUrl } = ctx;

  router.get('/Groups', async (req, res) => {
    const { startIndex, count } = groupsPagination(req);
    const r = await service.list(scimClientOf(res), { filter: groupsQueryParam(req, 'filter'), startIndex, count, withMembers: groupsWantsMembers(req) });
    const only = groupsAttributeSelection(req);
    sendScim(res, 200, groupsListResponse(r.total, startIndex, r.resources.map((g) => groupResource(baseUrl, g, only))));
  });

  router.get('/Groups/:id', async (req, res) => {
    const g = await service.get(scimClientOf(res), req.params.id, groupsWantsMembers(req));
    sendScim(res, 200, groupResource(baseUrl, g, groupsAttributeSelection(req)), g.version);
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
