import { z } from 'zod';
import { ROLES } from '../auth/principal.ts';

// The API's answers about users (see orgs.responses.ts for why these live apart from the routes).

/** A role in an answer (the request side, with its message, is fields.role). */
export const roleOut = z.enum(ROLES);

export const userOut = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string(),
  display_name: z.string(),
  role: roleOut,
  status: z.enum(['active', 'deactivated']),
  created_at: z.string(),
});

export const meOut = z.object({
  username: z.string(),
  email: z.string().nullable(),
  display_name: z.string(),
  principal_type: z.enum(['user', 'service_account']),
  instance_admin: z.boolean().optional().describe('a person only: whether they operate this trackgate instance'),
  theme: z.enum(['light', 'dark', 'system']).optional().describe('a person only: their page theme'),
  orgs: z.array(z.object({ slug: z.string(), role: roleOut.nullable() })),
  teams: z.array(z.object({ name: z.string(), org: z.string(), role: roleOut })),
});
