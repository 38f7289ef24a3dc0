import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * Keyless automation (src/federation): the trust rules of service accounts (federated credentials), the
 * access tokens an exchange at /oidc/token issues, the assertion ids already used (replay), and whether a
 * service account is keyless. Leaked-key reports (src/secret-scanning): what was revoked, where it leaked,
 * and whether its owner has seen the notice.
 */
export function migration010(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      // 1: federated only (no API keys may be made for it); 0: keys, and federation rules if any.
      await db.schema.alterTable('service_accounts').addColumn('keyless', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema
        .createTable('federated_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('service_account_id', 'text', (c) => c.notNull().references('service_accounts.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('audience', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('conditions', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_by', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('federated_credentials_sa').on('federated_credentials').columns(['org_id', 'service_account_id', 'created_at']).execute();
      await db.schema.createIndex('federated_credentials_issuer').on('federated_credentials').columns(['issuer']).execute();
      // No foreign keys to the account or the rule: their tokens outlive them as revoked rows, until pruned after expiry.
      await db.schema
        .createTable('access_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('service_account_id', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('jti', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('access_tokens_credential').on('access_tokens').columns(['credential_id']).execute();
      await db.schema.createIndex('access_tokens_sa').on('access_tokens').columns(['service_account_id']).execute();
      await db.schema.createIndex('access_tokens_expires').on('access_tokens').columns(['expires_at']).execute();
      await db.schema
        .createTable('federation_replays')
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('federation_replays_pk', ['issuer', 'jti'])
        .execute();
      await db.schema.createIndex('federation_replays_expires').on('federation_replays').columns(['expires_at']).execute();
      await db.schema
        .createTable('leaked_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('credential_type', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('label', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('service_account_id', 'text')
        .addColumn('url', 'text')
        .addColumn('source', 'text')
        .addColumn('reported_at', 'text', (c) => c.notNull())
        .addColumn('dismissed_at', 'text')
        .execute();
      await db.schema.createIndex('leaked_credentials_user').on('leaked_credentials').columns(['org_id', 'user_id', 'reported_at']).execute();
      await db.schema.createIndex('leaked_credentials_sa').on('leaked_credentials').columns(['org_id', 'service_account_id', 'reported_at']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('leaked_credentials').execute();
      await db.schema.dropTable('federation_replays').execute();
      await db.schema.dropTable('access_tokens').execute();
      await db.schema.dropTable('federated_credentials').execute();
      await db.schema.alterTable('service_accounts').dropColumn('keyless').execute();
    },
  };
}
