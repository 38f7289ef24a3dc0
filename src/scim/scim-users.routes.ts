import type { ScimRouteContext } from './scim.router.ts';
import type { ScimUsersService } from './scim-users.service.ts';

/** SCIM /Users over HTTP. */
export function registerScimUsersRoutes(_ctx: ScimRouteContext, _service: ScimUsersService): void {}
