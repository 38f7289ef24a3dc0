import type { Actor } from '../auth/actor.ts';
import type { Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import { AuditService } from './audit.service.ts';
import type { AuditEventView } from './audit.service.ts';

/** Reading an organization's audit log (org admins): the API and the admin page page through it the same way. */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly access: OrgAccess,
  ) {}

  async list(actor: Actor, slug: string, page: PageRequest, filter: { action?: string | undefined } = {}): Promise<Page<AuditEventView>> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const rows = await this.store.repos.audit.list(org.id, page, filter.action !== undefined ? { action: filter.action } : {});
    return { items: rows.items.map(AuditService.view), next: rows.next };
  }
}
