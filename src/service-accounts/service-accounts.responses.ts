import { z } from 'zod';

// The API's answers about service accounts (see orgs.responses.ts for why these live apart from the routes).

export const serviceAccountOut = z.object({
  id: z.string(),
  username: z.string().describe('its entity name in the tracking API'),
  name: z.string(),
  team: z.string().describe('the team it writes to (the default team of an organization-scoped account)'),
  scope: z.enum(['team', 'org']).describe('team: belongs to its team; org: organization-scoped, writing to its default team'),
  keyless: z.boolean().describe('federation only: it authenticates by exchanging workload tokens (/oidc/token) and holds no API keys'),
  org: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
