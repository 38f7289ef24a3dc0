import type { ScimRouteContext } from './scim.router.ts';

/** /ServiceProviderConfig, /ResourceTypes, /Schemas (RFC 7644 §4). */
export function registerScimDiscoveryRoutes(_ctx: ScimRouteContext): void {}
