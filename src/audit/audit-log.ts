import type { Actor } from '../auth/actor.ts';
import type { Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import type { AuditRepository } from './audit.repository.ts';
import { AuditService } from './audit.service.ts';
import type { AuditEventView } from './audit.service.ts';

/** What reading the log touches. */
export interface AuditLogRepos {
  audit: AuditRepository;
}

/**
 * Of src/orgs' OrgAccess, the one check the log needs: declared here by shape, since organizations
 * record their changes here (src/orgs depends on this folder, not the reverse).
 */
export interface AuditLogAccess {
  require(actor: Actor, slug: string, minimum: 'admin'): Promise<{ org: { id: string } }>;
}

/** Reading an organization's audit log (org admins): the API and the admin page page through it the same way. */
export class AuditLog {
  constructor(
    private readonly store: Store<AuditLogRepos>,
    private readonly access: AuditLogAccess,
  ) {}

  async list(actor: Actor, slug: string, page: PageRequest, filter: { action?: string | undefined } = {}): Promise<Page<AuditEventView>> {
    const { org } = await this.access.require(actor, slug, 'admin');
    const rows = await this.store.repos.audit.list(org.id, page, filter.action !== undefined ? { action: filter.action } : {});
    return { items: rows.items.map((r) => AuditService.view(r)), next: rows.next };
  }
}
