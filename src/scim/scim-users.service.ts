import type { ScimDeps } from './scim-deps.ts';

/** SCIM /Users: the rules (filtering, provisioning, PATCH, deprovisioning), knowing nothing of HTTP. */
export class ScimUsersService {
  constructor(readonly deps: ScimDeps) {}
}
