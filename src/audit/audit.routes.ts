import { z } from 'zod';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { Store } from '../db/store.ts';
import type { ApiRouter } from '../http/api-router.ts';
import { AuditLog } from './audit-log.ts';

export function registerAuditRoutes(api: ApiRouter, deps: { store: Store; access: OrgAccess }): void {
  const log = new AuditLog(deps.store, deps.access);
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/audit',
      summary: 'Audit log of an organization, newest first (org admin)',
      tag: 'audit',
      auth: 'required',
      query: z.strictObject({
        limit: z.coerce.number().int().min(1).max(500).default(100),
        before: z.coerce.number().int().min(1).optional(),
        action: z.string().max(100).optional(),
      }),
      responses: { 200: { description: 'events; pass next_cursor as before= for the next page' } },
    },
    async ({ actor, params, query }) => ({ status: 200, body: await log.list(actor, params.org!, query) }),
  );
}
