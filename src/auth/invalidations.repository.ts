import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { InvalidationsTables } from './invalidations.tables.ts';

/** An event as the log keeps it. */
export interface LoggedInvalidation {
  seq: number;
  kind: 'key' | 'all';
  keyHash: string | null;
}

/**
 * The invalidation log (migration 008). Appends take the head row's lock, so they run one at a time
 * and COMMIT IN THE ORDER OF THEIR NUMBERS: a transaction that got seq n commits (or rolls back, and
 * the head with it) before the next one can even read the head. A reader that saw the head at n has
 * therefore every row up to n committed before it, and reading `seq > last` never skips a row that
 * was still to commit. (A database sequence would not do: numbers are taken in one order and
 * committed in another, and a poller that had read 7 before 6 committed would never see 6.) Numbers
 * are also gapless, since a rolled-back append rolls its head back: a reader that finds fewer rows
 * than numbers knows they were pruned.
 */
export class InvalidationsRepository {
  constructor(private readonly db: Kysely<InvalidationsTables>) {}

  /**
   * Appends events, numbered on from the head; returns the last number. Must be the LAST statement of
   * its transaction: the head's lock is then held only while nothing else is waited for, and no two
   * transactions can each hold a lock the other needs (every transaction takes this one last).
   */
  async append(events: ReadonlyArray<{ kind: 'key' | 'all'; keyHash: string | null }>, createdAt: string): Promise<number> {
    const head = await this.db
      .updateTable('cache_invalidation_head')
      .set({ seq: sql<number>`seq + ${events.length}` })
      .where('id', '=', 1)
      .returning('seq')
      .executeTakeFirstOrThrow();
    const last = Number(head.seq);
    const first = last - events.length + 1;
    await this.db
      .insertInto('cache_invalidations')
      .values(events.map((e, i) => ({ seq: first + i, kind: e.kind, key_hash: e.keyHash, created_at: createdAt })))
      .execute();
    return last;
  }

  /** The last number given out (every row up to it has committed). */
  async head(): Promise<number> {
    const row = await this.db.selectFrom('cache_invalidation_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow();
    return Number(row.seq);
  }

  /** The events numbered after `after`, up to `upTo`, in order. */
  async between(after: number, upTo: number): Promise<LoggedInvalidation[]> {
    const rows = await this.db.selectFrom('cache_invalidations').select(['seq', 'kind', 'key_hash']).where('seq', '>', after).where('seq', '<=', upTo).orderBy('seq').execute();
    return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, keyHash: r.key_hash }));
  }

  /** Drops events older than `before` (ISO time); the head keeps counting. */
  async pruneBefore(before: string): Promise<number> {
    const result = await this.db.deleteFrom('cache_invalidations').where('created_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
