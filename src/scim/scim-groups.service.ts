import type { ScimDeps } from './scim-deps.ts';

/** SCIM /Groups: the rules (filtering, provisioning, PATCH, deprovisioning), knowing nothing of HTTP. */
export class ScimGroupsService {
  constructor(readonly deps: ScimDeps) {}
}
