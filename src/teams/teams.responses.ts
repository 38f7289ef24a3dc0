import { z } from 'zod';
import { roleOut } from '../users/users.responses.ts';

// The API's answers about teams (see orgs.responses.ts for why these live apart from the routes).

export const teamOut = z.object({ id: z.string(), name: z.string(), org: z.string(), created_at: z.string() });

export const memberOut = z.object({
  user_id: z.string(),
  username: z.string(),
  email: z.string().nullable().describe('null when the caller is a service account: it attributes runs by username and sees no email addresses'),
  display_name: z.string(),
  role: roleOut,
  created_at: z.string(),
});
