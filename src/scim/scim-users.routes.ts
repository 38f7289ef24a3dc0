import type { Request } from 'express';
import { readListQuery, selectAttributes } from './scim-list.ts';
import type { ScimRouteContext } from './scim.router.ts';
import { ifMatchOf, scimClientOf, sendScim } from './scim.router.ts';
import type { ScimUsersService } from './scim-users.service.ts';

/** The resource id of a /Users/{id} request (Express 5 gives a string for a named segment). */
function idOf(req: Request): string {
  return String(req.params.id);
}

/** SCIM /Users over HTTP: the service does the rules; here only the request's parts and the answers' status, Location and ETag. */
export function registerScimUsersRoutes(ctx: ScimRouteContext, service: ScimUsersService): void {
  const at = { baseUrl: ctx.baseUrl };
  const { router } = ctx;

  router.get('/Users', async (req, res) => {
    const query = readListQuery(req.query);
    const list = await service.list(scimClientOf(res), query, at);
    sendScim(res, 200, { ...list, Resources: list.Resources.map((r) => selectAttributes(r, query)) });
  });

  router.get('/Users/:id', async (req, res) => {
    const user = await service.get(scimClientOf(res), idOf(req), at);
    const query = readListQuery(req.query);
    sendScim(res, 200, selectAttributes(user, query), user.meta.version);
  });

  router.post('/Users', async (req, res) => {
    const user = await service.create(scimClientOf(res), req.body, at);
    res.setHeader('Location', user.meta.location);
    sendScim(res, 201, user, user.meta.version);
  });

  router.put('/Users/:id', async (req, res) => {
    const user = await service.replace(scimClientOf(res), idOf(req), req.body, at, ifMatchOf(req));
    sendScim(res, 200, user, user.meta.version);
  });

  // Okta and Entra ID both take 200 with the resource (RFC 7644 §3.5.2 allows it or 204).
  router.patch('/Users/:id', async (req, res) => {
    const user = await service.patch(scimClientOf(res), idOf(req), req.body, at, ifMatchOf(req));
    sendScim(res, 200, user, user.meta.version);
  });

  router.delete('/Users/:id', async (req, res) => {
    await service.remove(scimClientOf(res), idOf(req), at, ifMatchOf(req));
    res.status(204).end();
  });
}
