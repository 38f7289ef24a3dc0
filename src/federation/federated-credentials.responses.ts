import { z } from 'zod';

// The API's answers about trust rules (see orgs.responses.ts for why these live apart from the routes).

export const federatedCredentialOut = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string().describe("the workload tokens' iss, exactly"),
  audience: z.string().describe('the aud the token must carry (one of its values)'),
  subject: z.string().describe('the sub to match: exact, or a prefix ending in *'),
  conditions: z.record(z.string(), z.string()).describe('other claims, each equal to its value'),
  service_account: z.string().describe("the service account's username"),
  created_at: z.string(),
});
