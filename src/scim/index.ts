import type { Router } from 'express';
import type { ApiRouter } from '../http/api-router.ts';
import type { ScimDeps } from './scim-deps.ts';
import { registerScimDiscoveryRoutes } from './scim-discovery.routes.ts';
import { registerScimGroupsRoutes } from './scim-groups.routes.ts';
import { ScimGroupsService } from './scim-groups.service.ts';
import { registerScimTokenRoutes } from './scim-tokens.routes.ts';
import { ScimTokensService } from './scim-tokens.service.ts';
import { registerScimUsersRoutes } from './scim-users.routes.ts';
import { ScimUsersService } from './scim-users.service.ts';
import { SCIM_BASE_PATH, createScimRouter } from './scim.router.ts';

export { SCIM_PREFIX, scimBodyLimit } from './scim.router.ts';
export type { ScimDeps } from './scim-deps.ts';


export interface Scim {
  tokens: ScimTokensService;
  users: ScimUsersService;
  groups: ScimGroupsService;
  /** The public SCIM base URL to paste into an IdP (<public URL>/scim/v2). */
  baseUrl: string;
  /** The SCIM endpoint, to mount at SCIM_PREFIX (serves /scim/v2/… and /scim/…). */
  router: Router;
  /** /gateway/v1/orgs/:org/scim/tokens… */
  registerApi(api: ApiRouter): void;
}

/** Builds the SCIM feature: its services and routes, on the storage composed in src/storage.ts. */
export function createScim(deps: ScimDeps): Scim {
  const baseUrl = deps.config.publicUrl.replace(/\/+$/, '') + SCIM_BASE_PATH;
  const tokens = new ScimTokensService(deps.store, deps.access, deps.audit);
  const users = new ScimUsersService(deps);
  const groups = new ScimGroupsService(deps);
  const router = createScimRouter(tokens, baseUrl, (ctx) => {
    registerScimDiscoveryRoutes(ctx);
    registerScimUsersRoutes(ctx, users);
    registerScimGroupsRoutes(ctx, groups);
  });
  return { tokens, users, groups, baseUrl, router, registerApi: (api) => registerScimTokenRoutes(api, tokens, baseUrl) };
}
