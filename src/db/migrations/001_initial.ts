import type { Kysely } from 'kysely';
import type { DialectCaps } from '../dialect.ts';

export function migration001(caps: DialectCaps) {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('orgs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('slug', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('plan', 'text', (c) => c.notNull())
        .addColumn('require_sso', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('disable_personal_keys', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_key_lifetime_days', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      // One namespace for users, teams and service accounts: they are all
      // "entities" of the tracking service, so their names may not collide.
      await db.schema
        .createTable('entity_names')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('instance_admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('theme', 'text', (c) => c.notNull().defaultTo('system'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('users_org_idx').on('users').columns(['org_id', 'username']).execute();

      await db.schema
        .createTable('teams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('teams_org_idx').on('teams').columns(['org_id', 'name']).execute();

      await db.schema
        .createTable('team_members')
        .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('team_members_pk', ['team_id', 'user_id'])
        .execute();
      await db.schema.createIndex('team_members_user_idx').on('team_members').column('user_id').execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('owner_type', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.references('users.id'))
        .addColumn('service_account_id', 'text')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('rotated_from_id', 'text')
        .execute();
      await db.schema.createIndex('api_keys_user_idx').on('api_keys').columns(['org_id', 'user_id']).execute();
      await db.schema.createIndex('api_keys_sa_idx').on('api_keys').columns(['org_id', 'service_account_id']).execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('seq', caps.autoIncrementPrimaryKey, (c) => (caps.name === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('org_id', 'text')
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_name', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text')
        .addColumn('target_name', 'text')
        .addColumn('ip', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_org_idx').on('audit_events').columns(['org_id', 'seq']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      for (const t of ['audit_events', 'api_keys', 'team_members', 'teams', 'users', 'entity_names', 'orgs']) {
        await db.schema.dropTable(t).execute();
      }
    },
  };
}
