import { z } from 'zod';
import type { Store } from '../db/store.ts';
import type { ApiRouter } from '../http/api-router.ts';
import { decodeCursor, nextCursorOut, pageBody, pageQuery, pageRequest } from '../http/pagination.ts';
import { AuditLog } from './audit-log.ts';
import type { AuditLogAccess, AuditLogRepos } from './audit-log.ts';
import { auditEventOut } from './audit.responses.ts';

/** By sequence number, newest first. */
const auditPageQuery = pageQuery('audit', ['number']);

/**
 * `before`: how the audit log was paged before the one cursor parameter: the
 * seq of the last event seen (a number), or a next_cursor a client passes on
 * as it used to. Kept so that those clients keep working.
 */
const legacyBefore = z
  .string()
  .max(4096)
  .optional()
  .describe('deprecated: use cursor')
  .transform((v, ctx) => {
    if (v === undefined) return null;
    if (/^[1-9]\d{0,15}$/.test(v)) return [Number(v)];
    const key = decodeCursor('audit', ['number'], v);
    if (key === null) {
      ctx.addIssue({ code: 'custom', message: 'must be the seq of an event or a next_cursor of this list' });
      return z.NEVER;
    }
    return key;
  });

export function registerAuditRoutes(api: ApiRouter, deps: { store: Store<AuditLogRepos>; access: AuditLogAccess }): void {
  const log = new AuditLog(deps.store, deps.access);
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/audit',
      summary: 'Audit log of an organization, newest first, a page at a time (org admin)',
      tag: 'audit',
      auth: 'required',
      query: z.strictObject({
        ...auditPageQuery.shape,
        before: legacyBefore,
        action: z.string().max(100).optional(),
      }),
      responses: {
        200: { description: 'events; pass next_cursor as cursor= for the next (older) page', schema: z.object({ events: z.array(auditEventOut), next_cursor: nextCursorOut }) },
        400: { description: 'bad limit, cursor or before' },
      },
    },
    async ({ actor, params, query }) => {
      const page = pageRequest({ limit: query.limit, cursor: query.cursor ?? query.before });
      return { status: 200, body: pageBody('audit', 'events', await log.list(actor, params.org, page, { action: query.action })) };
    },
  );
}
