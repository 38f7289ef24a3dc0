import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * One-time login links (`trackgate bootstrap`, `trackgate login-link`): only
 * the SHA-256 of the token is stored, so a database dump cannot be turned
 * into a login. A link is used at most once (used_at) and expires.
 */
export function migration004(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('login_links')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
      await db.schema.createIndex('login_links_exp_idx').on('login_links').column('expires_at').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('login_links').execute();
    },
  };
}
