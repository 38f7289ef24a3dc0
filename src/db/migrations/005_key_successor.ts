import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * A key has at most one successor: rotating a key twice (or twice at once)
 * must not mint two live keys from one. The unique index is what makes two
 * concurrent rotations unable to both commit, whatever the service checked.
 * NULLs never collide, so keys that were not rotated are unaffected.
 *
 * Databases written before this rule may hold several successors of one key;
 * the earliest keeps its link and the others lose theirs (they stay valid
 * keys, they just no longer claim to replace that key), so the index can be built.
 */
export function migration005(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql`
        update api_keys set rotated_from_id = null
        where rotated_from_id is not null and exists (
          select 1 from api_keys e
          where e.rotated_from_id = api_keys.rotated_from_id
            and (e.created_at < api_keys.created_at or (e.created_at = api_keys.created_at and e.id < api_keys.id))
        )`.execute(db);
      await db.schema.createIndex('api_keys_rotated_from_uq').on('api_keys').column('rotated_from_id').unique().execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('api_keys_rotated_from_uq').execute();
    },
  };
}
