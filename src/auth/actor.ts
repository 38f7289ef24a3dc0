import type { OrgRole, Principal } from './principal.ts';

/** The caller of a service method: who, from where, in which request (for the audit log). */
export interface Actor {
  principal: Principal;
  ip: string;
  requestId: string;
}

export const ROLE_RANK = { viewer: 1, member: 2, admin: 3 } as const satisfies Record<OrgRole, number>;
