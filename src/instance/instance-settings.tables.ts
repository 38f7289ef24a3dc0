/**
 * Instance-wide facts (migration 011_instance_settings), by name. Same column conventions as every table
 * (docs/ARCHITECTURE.md, "Storage"); src/storage.ts composes them with every other feature's tables.
 */
export interface InstanceSettingsTable {
  /** 'public_url': the public URL the server last announced (src/instance/public-url.ts). */
  name: string;
  value: string;
  updated_at: string;
}

export interface InstanceSettingsTables {
  instance_settings: InstanceSettingsTable;
}
