import type { Kysely } from 'kysely';
import type { DB } from './schema.ts';
import { AuditRepository } from '../audit/audit.repository.ts';
import { KeysRepository } from '../keys/keys.repository.ts';
import { OrgsRepository } from '../orgs/orgs.repository.ts';
import { ServiceAccountsRepository } from '../service-accounts/service-accounts.repository.ts';
import { TeamsRepository } from '../teams/teams.repository.ts';
import { EntityNamesRepository } from '../users/entity-names.repository.ts';
import { UsersRepository } from '../users/users.repository.ts';

/** Every repository, bound to one connection or transaction. */
export function createRepositories(db: Kysely<DB>) {
  return {
    db,
    orgs: new OrgsRepository(db),
    users: new UsersRepository(db),
    entities: new EntityNamesRepository(db),
    teams: new TeamsRepository(db),
    keys: new KeysRepository(db),
    audit: new AuditRepository(db),
    serviceAccounts: new ServiceAccountsRepository(db),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;

/**
 * What services get: the repositories, and a way to run several changes as
 * one transaction so that nothing is half-written when one of them fails.
 */
export class Store {
  readonly repos: Repositories;

  constructor(private readonly db: Kysely<DB>) {
    this.repos = createRepositories(db);
  }

  transaction<T>(fn: (repos: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(createRepositories(trx)));
  }
}
