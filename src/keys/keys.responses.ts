import { z } from 'zod';

// The API's answers about API keys (see orgs.responses.ts for why these live apart from the routes).

export const keyOut = z.object({
  id: z.string(),
  key_id: z.string(),
  name: z.string(),
  owner: z.object({ type: z.enum(['user', 'service_account']), id: z.string() }),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  rotated_from: z.string().nullable(),
});
export const newKeyOut = keyOut.extend({ key: z.string().describe('the secret; shown only in this response') });
