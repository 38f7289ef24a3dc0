import { z } from 'zod';
import { errors } from '../errors/app-error.ts';

/** Shared field shapes, so the same rule and message hold on every endpoint. */
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
  role: z.enum(['admin', 'member', 'viewer'], { message: 'must be one of admin, member, viewer' }),
  plan: z.enum(['standard', 'enterprise'], { message: 'must be standard or enterprise' }),
};

function describe(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : 'body';
      if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}${i.path.length ? ` in ${path}` : ''}`;
      if (i.code === 'invalid_type' && i.message.includes('received undefined')) return `${path}: is required`;
      return `${path}: ${i.message}`;
    })
    .join('; ');
}

/** Parses input with a schema; a failure is a 400 whose message names every problem. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where = 'request body'): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw errors.validation(`invalid ${where}: ${describe(result.error.issues)}`, result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code })));
  }
  return result.data;
}
