import type { Kysely } from 'kysely';

/**
 * What a service gets: the repositories it declared (its `…Repos` type), bound
 * to the connection, and a way to run several changes as one transaction, with
 * the same repositories bound to that transaction, so that nothing is
 * half-written when one of them fails (a change and its audit event commit
 * together). Generic: the repositories are composed in src/storage.ts; this
 * folder knows no feature.
 */
export class Store<R> {
  private constructor(
    readonly repos: R,
    private readonly inTransaction: <T>(fn: (repos: R) => Promise<T>) => Promise<T>,
  ) {}

  /** `bind` makes the repositories on a connection or a transaction of `db`. */
  static over<DB, R>(db: Kysely<DB>, bind: (db: Kysely<DB>) => R): Store<R> {
    return new Store(bind(db), (fn) => db.transaction().execute((trx) => fn(bind(trx))));
  }

  transaction<T>(fn: (repos: R) => Promise<T>): Promise<T> {
    return this.inTransaction(fn);
  }
}
