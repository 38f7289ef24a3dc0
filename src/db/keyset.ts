import { sql } from 'kysely';
import type { SelectQueryBuilder, SqlBool } from 'kysely';

/** One value of a sort key: a text column or an integer one. */
export type KeyValue = string | number;

/** Which page of a list: at most `limit` rows, those after the row whose sort key is `after` (null: the first page). */
export interface PageRequest {
  limit: number;
  after: readonly KeyValue[] | null;
}

/** A page of a list and the sort key of its last row when more rows follow (null on the last page). */
export interface Page<T> {
  items: T[];
  next: KeyValue[] | null;
}

/**
 * How a list is ordered: by columns that together are unique and never
 * change (the keyset), so a page starts strictly after the previous page's
 * last row and rows inserted meanwhile are neither repeated nor skipped over.
 */
export interface Keyset<O> {
  columns: readonly string[];
  direction: 'asc' | 'desc';
  keyOf: (row: O) => KeyValue[];
}


/**
 * Runs a list query one page at a time, keyset-based: a row-value comparison
 * `(a, b) > (x, y)` (both SQLite and PostgreSQL have it) instead of OFFSET,
 * which would shift under concurrent inserts and cost more the deeper it goes.
 * One row more than asked for tells whether another page follows.
 */
export async function keysetPage<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>, keyset: Keyset<O>, page: PageRequest): Promise<Page<O>> {
  let q = query;
  if (page.after !== null) {
    if (page.after.length !== keyset.columns.length) throw new Error(`a cursor of ${page.after.length} values for a keyset of ${keyset.columns.length} columns`);
    const columns = sql.join(keyset.columns.map((c) => sql.ref(c)));
    const values = sql.join(page.after.map((v) => sql.val(v)));
    q = q.where(sql<SqlBool>`(${columns}) ${sql.raw(keyset.direction === 'asc' ? '>' : '<')} (${values})`);
  }
  for (const c of keyset.columns) q = q.orderBy(sql.ref(c), keyset.direction);
  const rows = await q.limit(page.limit + 1).execute();
  if (rows.length <= page.limit) return { items: rows, next: null };
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return { items, next: last === undefined ? null : keyset.keyOf(last) };
}
