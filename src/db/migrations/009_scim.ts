import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

/**
 * SCIM provisioning (src/scim): the organizations' SCIM tokens, and what SCIM says of users and teams
 * that trackgate's own tables do not hold (externalId, name parts, who owns a team, removal).
 */
export function migration009(_caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('scim_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('scim_tokens_org').on('scim_tokens').columns(['org_id', 'created_at']).execute();
      await db.schema
        .createTable('scim_users')
        .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('external_id', 'text')
        .addColumn('given_name', 'text')
        .addColumn('family_name', 'text')
        .addColumn('removed_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('scim_users_external_id').on('scim_users').columns(['org_id', 'external_id']).unique().execute();
      await db.schema
        .createTable('scim_groups')
        .addColumn('team_id', 'text', (c) => c.primaryKey().references('teams.id').onDelete('cascade'))
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('external_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // SCIM lists walk an organization's users and teams in creation order (startIndex/count pages).
      await db.schema.createIndex('users_org_created').on('users').columns(['org_id', 'created_at', 'id']).execute();
      await db.schema.createIndex('teams_org_created').on('teams').columns(['org_id', 'created_at', 'id']).execute();
      await db.schema.createIndex('scim_groups_display_name').on('scim_groups').columns(['org_id', 'display_name']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('teams_org_created').execute();
      await db.schema.dropIndex('users_org_created').execute();
      await db.schema.dropTable('scim_groups').execute();
      await db.schema.dropTable('scim_users').execute();
      await db.schema.dropTable('scim_tokens').execute();
    },
  };
}
