import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * The log of cache invalidations (src/auth/invalidations.repository.ts): a one-row head holding the
 * last sequence number given out, and the events by sequence number. Every instance polls it, so that
 * a revocation reaches every cache within a bound even when the Redis channel lost the message.
 */
export function migration008(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('cache_invalidation_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('cache_invalidation_head').values({ id: 1, seq: 0 }).execute();
      await db.schema
        .createTable('cache_invalidations')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('cache_invalidations').execute();
      await db.schema.dropTable('cache_invalidation_head').execute();
    },
  };
}
