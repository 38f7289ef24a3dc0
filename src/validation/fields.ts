import { z } from 'zod';
import { ROLES } from '../auth/principal.ts';

/**
 * The shapes of the domain's names and values (an organization's slug, an entity name, an email, a
 * role): one rule and one message wherever one is checked, by the API's schemas (src/http/validation.ts
 * passes them on) and by services that judge a value they did not get from a request (an IdP's email claim).
 */
export const fields = {
  slug: z
    .string()
    .min(2, 'must be at least 2 characters')
    .max(40, 'must be at most 40 characters')
    .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'must be lowercase letters, digits and dashes, not starting or ending with a dash'),
  entityName: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, dashes and underscores, starting with a letter or digit'),
  email: z
    .string()
    .max(254, 'must be at most 254 characters')
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.email('must be an email address')),
  displayName: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  label: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }),
  plan: z.enum(['standard', 'enterprise'], { error: 'must be standard or enterprise' }),
};
