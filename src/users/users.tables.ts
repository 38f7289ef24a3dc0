import type { OrgRole } from '../auth/principal.ts';

/**
 * Users and the one namespace of entity names shared by users, teams and service accounts (migrations 001, 006).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
export interface UsersTable {
  id: string;
  org_id: string;
  email: string;
  username: string;
  display_name: string;
  role: OrgRole;
  status: 'active' | 'deactivated';
  instance_admin: number;
  theme: 'light' | 'dark' | 'system';
  created_at: string;
  updated_at: string;
}

export interface EntityNamesTable {
  name: string;
  kind: 'user' | 'team' | 'service_account';
  org_id: string;
  /** Set when the entity is gone: the name stays its organization's (a tombstone). */
  released_at: string | null;
}

export interface UsersTables {
  users: UsersTable;
}

export interface EntityNamesTables {
  entity_names: EntityNamesTable;
}
