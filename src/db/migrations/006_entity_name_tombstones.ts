import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * A released entity name (a deleted service account's) stays as a tombstone
 * of its organization: released_at set. Another organization must never take
 * it over, since the tracking API keeps data under the name; the same
 * organization may reuse it. Names released before this rule were deleted and
 * cannot be told apart now.
 */
export function migration006(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('entity_names').addColumn('released_at', 'text').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.deleteFrom('entity_names').where('released_at', 'is not', null).execute();
      await db.schema.alterTable('entity_names').dropColumn('released_at').execute();
    },
  };
}
