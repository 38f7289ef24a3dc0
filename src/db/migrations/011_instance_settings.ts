import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/** Facts about the running instance that its CLI must agree with (src/instance): the public URL the server announced. */
export function migration011(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('instance_settings')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('instance_settings').execute();
    },
  };
}
