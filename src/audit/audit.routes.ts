import { z } from 'zod';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { Store } from '../db/store.ts';
import type { ApiRouter } from '../http/api-router.ts';
import { AuditService } from './audit.service.ts';

export function registerAuditRoutes(api: ApiRouter, deps: { store: Store; access: OrgAccess }): void {
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
    async ({ actor, params, query }) => {
      const { org } = await deps.access.require(actor, params.org!, 'admin');
      const rows = await deps.store.repos.audit.list(org.id, query);
      const events = rows.map(AuditService.view);
      return { status: 200, body: { events, next_cursor: rows.length === query.limit ? (events.at(-1)?.cursor ?? null) : null } };
    },
  );
}
