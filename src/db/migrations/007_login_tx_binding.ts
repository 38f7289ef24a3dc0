import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * Pending login attempts are looked up by the browser that started them: each
 * new start keeps at most a few per binding cookie (loginMaxPendingPerBrowser)
 * and drops the oldest, which needs this index to stay cheap.
 */
export function migration007(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('login_transactions_binding_idx').on('login_transactions').columns(['binding_hash', 'created_at']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('login_transactions_binding_idx').execute();
    },
  };
}
