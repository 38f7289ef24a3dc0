import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditEventsTable, DB } from '../db/schema.ts';

export type AuditRow = Selectable<AuditEventsTable>;

export class AuditRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(row: Insertable<AuditEventsTable>): Promise<void> {
    await this.db.insertInto('audit_events').values(row).execute();
  }

  /** Newest first; `before` is the seq of the last event of the previous page. */
  async list(orgId: string, options: { limit: number; before?: number; action?: string }): Promise<AuditRow[]> {
    let q = this.db.selectFrom('audit_events').selectAll().where('org_id', '=', orgId);
    if (options.before !== undefined) q = q.where('seq', '<', options.before);
    if (options.action !== undefined) q = q.where('action', '=', options.action);
    return q.orderBy('seq', 'desc').limit(options.limit).execute();
  }
}
