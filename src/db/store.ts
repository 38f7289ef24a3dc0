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
  readonly repos: R;

  constructor(
    private readonly db: Kysely<any>,
    private readonly bind: (db: Kysely<any>) => R,
  ) {
    this.repos = bind(db);
  }

  transaction<T>(fn: (repos: R) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(this.bind(trx)));
  }
}
