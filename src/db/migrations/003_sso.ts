import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/** SSO (issue 4): connections, their email domains, linked IdP identities, login transactions, browser sessions. */
export function migration003(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('sso_connections')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('flow', 'text', (c) => c.notNull())
        .addColumn('response_mode', 'text', (c) => c.notNull())
        .addColumn('client_secret_sealed', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('claims', 'text', (c) => c.notNull())
        .addColumn('group_roles', 'text', (c) => c.notNull())
        .addColumn('jit', 'integer', (c) => c.notNull())
        .addColumn('allowed_tenant_ids', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('metadata', 'text')
        .addColumn('discovered_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sso_connections_org_idx').on('sso_connections').columns(['org_id', 'created_at']).execute();

      await db.schema
        .createTable('sso_domains')
        .addColumn('domain', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('connection_id', 'text', (c) => c.notNull().references('sso_connections.id').onDelete('cascade'))
        .execute();
      await db.schema.createIndex('sso_domains_conn_idx').on('sso_domains').columns(['org_id', 'connection_id']).execute();

      await db.schema
        .createTable('external_identities')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('identity_key', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text')
        .addColumn('object_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_login_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('external_identities_key_uq', ['org_id', 'identity_key'])
        .execute();
      await db.schema.createIndex('external_identities_user_idx').on('external_identities').columns(['org_id', 'user_id']).execute();

      await db.schema
        .createTable('login_transactions')
        .addColumn('state_hash', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('connection_id', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('code_verifier_sealed', 'text')
        .addColumn('return_to', 'text', (c) => c.notNull())
        .addColumn('binding_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('login_transactions_exp_idx').on('login_transactions').column('expires_at').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('sid', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_exp_idx').on('sessions').column('expires_at').execute();
      await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      for (const t of ['sessions', 'login_transactions', 'external_identities', 'sso_domains', 'sso_connections']) {
        await db.schema.dropTable(t).execute();
      }
    },
  };
}
