import type { Insertable, Kysely, Selectable } from 'kysely';
import { keysetPage } from '../db/keyset.ts';
import type { Keyset, Page, PageRequest } from '../db/keyset.ts';
import type { AuditEventsTable, AuditTables } from './audit.tables.ts';

export type AuditRow = Selectable<AuditEventsTable>;

/** Newest first, by the event's sequence number. */
const NEWEST_FIRST: Keyset<AuditRow> = { columns: ['seq'], direction: 'desc', keyOf: (r) => [Number(r.seq)] };

export class AuditRepository {
  constructor(private readonly db: Kysely<AuditTables>) {}

  async insert(row: Insertable<AuditEventsTable>): Promise<void> {
    await this.db.insertInto('audit_events').values(row).execute();
  }

  /** Newest first, a page at a time. */
  async list(orgId: string, page: PageRequest, filter: { action?: string } = {}): Promise<Page<AuditRow>> {
    let q = this.db.selectFrom('audit_events').selectAll().where('org_id', '=', orgId);
    if (filter.action !== undefined) q = q.where('action', '=', filter.action);
    return keysetPage(q, NEWEST_FIRST, page);
  }
}
