import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../db/store.ts';
import type { KeysRepository } from '../keys/keys.repository.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import type { ServiceAccountsRepository } from '../service-accounts/service-accounts.repository.ts';
import type { SsoRepository } from '../sso/sso.repository.ts';
import type { TeamsRepository } from '../teams/teams.repository.ts';
import type { TeamsService } from '../teams/teams.service.ts';
import type { EntityNamesRepository } from '../users/entity-names.repository.ts';
import type { UsersRepository } from '../users/users.repository.ts';
import type { UsersService } from '../users/users.service.ts';
import type { ScimGroupsRepository } from './scim-groups.repository.ts';
import type { ScimTokensRepository } from './scim-tokens.repository.ts';
import type { ScimUsersRepository } from './scim-users.repository.ts';

/** The repositories SCIM's rules touch (src/storage.ts composes them). */
export interface ScimRepos extends InvalidationRepos {
  orgs: OrgsRepository;
  users: UsersRepository;
  entities: EntityNamesRepository;
  teams: TeamsRepository;
  keys: KeysRepository;
  serviceAccounts: ServiceAccountsRepository;
  sso: SsoRepository;
  audit: AuditRepository;
  scimTokens: ScimTokensRepository;
  scimUsers: ScimUsersRepository;
  scimGroups: ScimGroupsRepository;
}

/** What the SCIM feature is built from (src/management/management-app.ts passes the core's). */
export interface ScimDeps {
  config: Config;
  logger: Logger;
  store: Store<ScimRepos>;
  access: OrgAccess;
  audit: AuditService;
  invalidator: CacheInvalidator;
  users: UsersService;
  teams: TeamsService;
  /** Ends every browser session of a person, on every instance (the session store is shared). */
  endSessionsOf: (userId: string) => Promise<void>;
}
