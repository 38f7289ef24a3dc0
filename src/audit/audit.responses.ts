import { z } from 'zod';

// The API's answer for an audit event (see orgs.responses.ts for why it lives apart from the routes).

const party = z.object({ type: z.string(), id: z.string().nullable(), name: z.string().nullable() });

export const auditEventOut = z.object({
  id: z.string(),
  action: z.string(),
  actor: party,
  target: party,
  ip: z.string().nullable(),
  request_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  created_at: z.string(),
  cursor: z.number().describe('the event\'s sequence number'),
});
