import type { Actor } from '../auth/actor.ts';
import type { Store } from '../db/store.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import { AuditService } from './audit.service.ts';
import type { AuditEventView } from './audit.service.ts';

export interface AuditPage {
  events: AuditEventView[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next_cursor: number | null;
}

/** Reading an organization's audit log (org admins): the API and the admin page page through it the same way. */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly access: OrgAccess,
  ) {}

  async list(actor: Actor, slug: string, query: { limit: number; before?: number | undefined; action?: string | undefined }): Promise<AuditPage> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const rows = await this.store.repos.audit.list(org.id, {
      limit: query.limit,
      ...(query.before !== undefined ? { before: query.before } : {}),
      ...(query.action !== undefined ? { action: query.action } : {}),
    });
    const events = rows.map(AuditService.view);
    return { events, next_cursor: rows.length === query.limit ? (events.at(-1)?.cursor ?? null) : null };
  }
}
