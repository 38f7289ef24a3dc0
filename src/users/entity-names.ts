import { AppError, errors } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
import type { EntityNamesRepository } from './entity-names.repository.ts';

/**
 * Names no user, team or service account may take, whatever its kind: the
 * first path segments trackgate serves itself (src/http/server.ts; the tracking
 * UI's /<entity>/... pages under such a name would be shadowed by trackgate's
 * own), the tracking API's own top-level paths, and names that would read as
 * the service's. The one list: every way an entity is created checks it here.
 */
export const RESERVED_ENTITY_NAMES: ReadonlySet<string> = new Set([
  // trackgate's own paths
  'gateway',
  'auth',
  'static',
  'metrics',
  'healthz',
  'readyz',
  'login',
  'logout',
  'settings',
  'teams',
  'admin',
  'oidc',
  'scim',
  '.well-known',
  'favicon.ico',
  // the tracking API's top-level paths, and names that would pass for the service
  'graphql',
  'files',
  'api',
  'trackgate',
  'root',
  'system',
]);

export function isReservedEntityName(name: string): boolean {
  return RESERVED_ENTITY_NAMES.has(name.toLowerCase());
}

/**
 * Refuses a name `orgId` may not claim: 422 `name_reserved` for a reserved one, 409 `code` for one that
 * an entity holds or another organization released. Call it before claiming, in the claiming transaction.
 */
export async function requireClaimableName(repos: { entities: EntityNamesRepository }, name: string, orgId: string, code: ErrorCode): Promise<void> {
  if (isReservedEntityName(name)) throw new AppError('name_reserved', `the name "${name}" is reserved: trackgate serves paths under /${name} itself, or the tracking service does`);
  if (await repos.entities.isTaken(name, orgId)) throw errors.conflict(`the name "${name}" is already taken by a user, team or service account`, code);
}
