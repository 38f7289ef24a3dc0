import { z } from 'zod';
import type { KeyValue, Page, PageRequest } from '../db/keyset.ts';

export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 500;

/** The value types of a list's sort key, in order: what a cursor of that list must hold. */
export type KeyShape = readonly ('string' | 'number')[];

/**
 * A cursor is opaque to clients: base64url of a JSON array holding the list's
 * name and the sort key of the previous page's last row. The list name makes
 * a cursor of one list a 400 on another instead of a silently odd page. It is
 * not secret or signed: it only says where to start, and every list query is
 * scoped to what the caller may see whatever the cursor says.
 */
export function encodeCursor(list: string, key: readonly KeyValue[] | null): string | null {
  return key === null ? null : Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

/** The sort key in a cursor of this list, or null when it is not one. */
export function decodeCursor(list: string, shape: KeyShape, cursor: string): KeyValue[] | null {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length + 1 || parsed[0] !== list) return null;
  const key = parsed.slice(1) as unknown[];
  const ok = key.every((v, i) => (shape[i] === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && v.length <= 512));
  return ok ? (key as KeyValue[]) : null;
}

/**
 * The query parameters of every paginated list: `limit` and `cursor` (the
 * `next_cursor` of the previous page). Without them, the first page. Not
 * strict, so that clients sending other parameters keep working.
 */
export function pageQuery(list: string, shape: KeyShape) {
  return z.object({
    limit: z.coerce
      .number({ error: 'must be a whole number' })
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(PAGE_LIMIT_MAX, `must be at most ${PAGE_LIMIT_MAX}`)
      .default(PAGE_LIMIT_DEFAULT)
      .describe(`page size (default ${PAGE_LIMIT_DEFAULT}, at most ${PAGE_LIMIT_MAX})`),
    cursor: z
      .string()
      .max(4096, 'is not a cursor of this list')
      .optional()
      .describe('next_cursor of the previous page; omit for the first page')
      .transform((c, ctx) => {
        if (c === undefined) return null;
        const key = decodeCursor(list, shape, c);
        if (key === null) {
          ctx.addIssue({ code: 'custom', message: 'is not a cursor of this list (pass next_cursor of the previous page as it was given)' });
          return z.NEVER;
        }
        return key;
      }),
  });
}

/** The page request a parsed page query asks for. */
export function pageRequest(query: { limit: number; cursor: readonly KeyValue[] | null }): PageRequest {
  return { limit: query.limit, after: query.cursor };
}

/** `next_cursor` in a list's response schema. */
export const nextCursorOut = z.string().nullable().describe('pass as cursor for the next page; null on the last page');

/** A page's items under the list's own field name, and next_cursor. */
export function pageBody<T, K extends string>(list: string, field: K, page: Page<T>): Record<K, T[]> & { next_cursor: string | null } {
  return { [field]: page.items, next_cursor: encodeCursor(list, page.next) } as Record<K, T[]> & { next_cursor: string | null };
}
