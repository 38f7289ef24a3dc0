import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { SigningKeysRepository } from './assertions/signing-keys.repository.ts';
import type { SigningKeysTables } from './assertions/signing-keys.tables.ts';
import { AuditRepository } from './audit/audit.repository.ts';
import type { AuditTables } from './audit/audit.tables.ts';
import { InvalidationsRepository } from './auth/invalidations.repository.ts';
import type { InvalidationsTables } from './auth/invalidations.tables.ts';
import { Store } from './db/store.ts';
import { KeysRepository } from './keys/keys.repository.ts';
import type { KeysTables } from './keys/keys.tables.ts';
import { OrgsRepository } from './orgs/orgs.repository.ts';
import type { OrgsTables } from './orgs/orgs.tables.ts';
import { ServiceAccountsRepository } from './service-accounts/service-accounts.repository.ts';
import type { ServiceAccountsTables } from './service-accounts/service-accounts.tables.ts';
import type { RedisKeyspace } from './redis/keyspace.ts';
import { DbTransactionStore, RedisTransactionStore } from './sso/login-transactions.ts';
import type { TransactionStore } from './sso/login-transactions.ts';
import { DbSessionStore, RedisSessionStore } from './sso/session-store.ts';
import type { SessionTimeouts, TrackgateSessionStore } from './sso/session-store.ts';
import { SessionsRepository } from './sso/sessions.repository.ts';
import { SsoRepository } from './sso/sso.repository.ts';
import type { SsoTables } from './sso/sso.tables.ts';
import { TeamsRepository } from './teams/teams.repository.ts';
import type { TeamsTables } from './teams/teams.tables.ts';
import { ScimGroupsRepository } from './scim/scim-groups.repository.ts';
import { ScimTokensRepository } from './scim/scim-tokens.repository.ts';
import { ScimUsersRepository } from './scim/scim-users.repository.ts';
import type { ScimTables } from './scim/scim.tables.ts';
import { AccessTokensRepository } from './federation/access-tokens.repository.ts';
import { FederatedCredentialsRepository } from './federation/federated-credentials.repository.ts';
import type { FederationTables } from './federation/federation.tables.ts';
import { FederationReplaysRepository } from './federation/replays.repository.ts';
import { LeakedCredentialsRepository } from './secret-scanning/leaked-credentials.repository.ts';
import type { SecretScanningTables } from './secret-scanning/secret-scanning.tables.ts';
import { InstanceSettingsRepository } from './instance/instance-settings.repository.ts';
import type { InstanceSettingsTables } from './instance/instance-settings.tables.ts';
import { EntityNamesRepository } from './users/entity-names.repository.ts';
import { UsersRepository } from './users/users.repository.ts';
import type { EntityNamesTables, UsersTables } from './users/users.tables.ts';
import { LoginLinksRepository } from './web/login-links.repository.ts';
import type { LoginLinksTables } from './web/login-links.tables.ts';

/**
 * The storage of the whole service, composed in one place. Each feature owns
 * its tables' types (`*.tables.ts`, beside its repository) and declares the
 * repositories its rules touch (a `…Repos` type beside its service); this file
 * is the only one that knows them all: it makes the database type and every
 * repository, bound to the connection or to one transaction. The migrations
 * (src/db/migrations) stay one ordered history of plain DDL.
 */
export type DB = OrgsTables & UsersTables & EntityNamesTables & TeamsTables & KeysTables & AuditTables & SigningKeysTables & ServiceAccountsTables & LoginLinksTables & SsoTables & InvalidationsTables & ScimTables & FederationTables & SecretScanningTables & InstanceSettingsTables;

/**
 * The connection seen with only the tables a repository declares. Kysely's
 * type is invariant in its tables, so a wider database does not pass for a
 * narrower one by itself; the parameter type checks that DB has them all.
 */
function tables<T>(db: Kysely<DB extends T ? DB : never>): Kysely<T> {
  return db as unknown as Kysely<T>;
}

/** Every repository, bound to one connection or transaction: each feature's `…Repos` is a part of this. */
function createRepositories(db: Kysely<DB>) {
  return {
    orgs: new OrgsRepository(tables(db)),
    users: new UsersRepository(tables(db)),
    entities: new EntityNamesRepository(tables(db)),
    teams: new TeamsRepository(tables(db)),
    keys: new KeysRepository(tables(db)),
    audit: new AuditRepository(tables(db)),
    serviceAccounts: new ServiceAccountsRepository(tables(db)),
    sso: new SsoRepository(tables(db)),
    sessions: new SessionsRepository(tables(db)),
    loginLinks: new LoginLinksRepository(tables(db)),
    signingKeys: new SigningKeysRepository(tables(db)),
    invalidations: new InvalidationsRepository(tables(db)),
    scimTokens: new ScimTokensRepository(tables(db)),
    scimUsers: new ScimUsersRepository(tables(db)),
    scimGroups: new ScimGroupsRepository(tables(db)),
    federatedCredentials: new FederatedCredentialsRepository(tables(db)),
    accessTokens: new AccessTokensRepository(tables(db)),
    federationReplays: new FederationReplaysRepository(tables(db)),
    leakedCredentials: new LeakedCredentialsRepository(tables(db)),
    instanceSettings: new InstanceSettingsRepository(tables(db)),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;

/** The store services get (each typed by the part it declared). */
export function createStore(db: Kysely<DB>): Store<Repositories> {
  return Store.over(db, createRepositories);
}

/** Where browser sessions and pending logins are kept: in Redis when there is one (shared by every instance), else in the database. */
export interface SessionStorage {
  sessions: TrackgateSessionStore;
  loginTransactions: TransactionStore;
}

export function createSessionStorage(
  db: Kysely<DB>,
  redis: { client: Redis; keyspace: RedisKeyspace } | null,
  options: { timeouts: SessionTimeouts; maxPendingPerBrowser: number },
): SessionStorage {
  if (redis) {
    return {
      sessions: new RedisSessionStore(redis.client, options.timeouts, redis.keyspace),
      loginTransactions: new RedisTransactionStore(redis.client, redis.keyspace, options.maxPendingPerBrowser),
    };
  }
  const repos = createRepositories(db);
  return { sessions: new DbSessionStore(repos.sessions, options.timeouts), loginTransactions: new DbTransactionStore(() => repos.sso, options.maxPendingPerBrowser) };
}
