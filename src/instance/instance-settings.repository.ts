import type { Kysely } from 'kysely';
import type { InstanceSettingsTables } from './instance-settings.tables.ts';

/** Instance-wide settings, by name. No tenant: they belong to the installation as a whole. */
export class InstanceSettingsRepository {
  constructor(private readonly db: Kysely<InstanceSettingsTables>) {}

  async get(name: string): Promise<{ value: string; updated_at: string } | undefined> {
    return this.db.selectFrom('instance_settings').select(['value', 'updated_at']).where('name', '=', name).executeTakeFirst();
  }

  async put(name: string, value: string, at: string): Promise<void> {
    await this.db
      .insertInto('instance_settings')
      .values({ name, value, updated_at: at })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: at }))
      .execute();
  }
}
