import type { z } from 'zod';
import { errors } from '../errors/app-error.ts';

/** Shared field shapes, so the same rule and message hold on every endpoint. */
export { fields } from '../validation/fields.ts';

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
