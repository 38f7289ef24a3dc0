import type { Request } from 'express';
import type { AuditLog } from '../audit/audit-log.ts';
import type { FederatedCredentialsService } from '../federation/federated-credentials.service.ts';
import type { Principal } from '../auth/principal.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';
import type { ScimTokensService } from '../scim/scim-tokens.service.ts';
import type { SecretScanningService } from '../secret-scanning/secret-scanning.service.ts';
import type { ServiceAccountsService } from '../service-accounts/service-accounts.service.ts';
import type { IdentitiesService } from '../sso/identities.service.ts';
import type { SessionManager } from '../sso/session-store.ts';
import type { SsoService } from '../sso/sso.service.ts';
import type { SamlLogins } from '../sso/saml/saml-login.ts';
import type { SsoLoginService } from '../sso/sso-login.service.ts';
import type { TeamsService } from '../teams/teams.service.ts';
import type { UsersService } from '../users/users.service.ts';
import type { FlashStore } from './flash.ts';

/** The services the pages call (they only call services). */
export interface WebRoutesDeps {
  users: UsersService;
  keys: KeysService;
  teams: TeamsService;
  serviceAccounts: ServiceAccountsService;
  federatedCredentials: FederatedCredentialsService;
  orgs: OrgsService;
  sso: SsoService;
  /** The test login (admin page): started here, finished by the SSO callback, reported here. */
  ssoLogin: SsoLoginService;
  /** SAML connections' test logins start there. */
  saml: SamlLogins;
  loginTransactionTtlSeconds: number;
  identities: IdentitiesService;
  auditLog: AuditLog;
  sessions: SessionManager;
  /** The browser session's person (the SSO feature's session hook, with its require_sso rule). */
  sessionPrincipal: (req: Request) => Promise<Principal | null>;
  flash: FlashStore;
  scimTokens: ScimTokensService;
  /** The SCIM base URL an admin pastes into the IdP. */
  scimBaseUrl: string;
  /** Notices of credentials a secret scanner reported public, and their dismissal. */
  leakedCredentials: SecretScanningService;
}
