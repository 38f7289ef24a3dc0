import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * The gateway's tables: the keys that sign identity assertions (private half
 * sealed with the SecretBox) and service accounts.
 */
export function migration002(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('signing_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk_sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        // Published from created_at, used for signing from activates_at, dropped from the JWKS after expires_at.
        .addColumn('activates_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .execute();

      await db.schema
        .createTable('service_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        // The team it writes to: its own team, or the default team of an organization-scoped account.
        .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('service_accounts_org_team_idx').on('service_accounts').columns(['org_id', 'team_id']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('service_accounts').execute();
      await db.schema.dropTable('signing_keys').execute();
    },
  };
}
