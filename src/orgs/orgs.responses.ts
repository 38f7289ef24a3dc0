import { z } from 'zod';

// The API's answers about organizations. The routes declare them (validation of the answer under test, and
// the OpenAPI document); the service builds its views as their types, so a view and its schema cannot drift.
// Only zod here: services import these types, and domain code does not import src/http.

export const orgOut = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  plan: z.enum(['standard', 'enterprise']),
  policies: z.object({ require_sso: z.boolean(), disable_personal_keys: z.boolean(), max_key_lifetime_days: z.number().nullable() }),
  created_at: z.string(),
});
