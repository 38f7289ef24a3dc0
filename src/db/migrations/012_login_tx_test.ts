import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * A test login (the admin's "Test login" on /admin) is a login transaction like any other, marked with
 * the hash of the admin's session that started it: its callback runs every check and reports what the
 * token would do, and signs nobody in.
 */
export function migration012(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('login_transactions').addColumn('test_of', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('login_transactions').dropColumn('test_of').execute();
    },
  };
}
