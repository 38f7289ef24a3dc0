import type { ScimRouteContext } from './scim.router.ts';
import type { ScimGroupsService } from './scim-groups.service.ts';

/** SCIM /Groups over HTTP. */
export function registerScimGroupsRoutes(_ctx: ScimRouteContext, _service: ScimGroupsService): void {}
