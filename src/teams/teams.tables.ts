import type { TeamRole } from '../auth/principal.ts';

/**
 * Teams and their members (migration 001).
 * Same column conventions as every table (docs/ARCHITECTURE.md, "Storage");
 * src/storage.ts composes every feature's tables into the one database type.
 */
export interface TeamsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
}

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  org_id: string;
  role: TeamRole;
  created_at: string;
}

export interface TeamsTables {
  teams: TeamsTable;
  team_members: TeamMembersTable;
}
