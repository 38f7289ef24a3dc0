import express from 'express';
import type { Router } from 'express';
import { AuditLog } from '../audit/audit-log.ts';
import type { AuditLogRepos } from '../audit/audit-log.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Config } from '../config/config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';
import type { ScimTokensService } from '../scim/scim-tokens.service.ts';
import type { SecretScanningService } from '../secret-scanning/secret-scanning.service.ts';
import type { FederatedCredentialsService } from '../federation/federated-credentials.service.ts';
import type { ServiceAccountsService } from '../service-accounts/service-accounts.service.ts';
import type { Sso } from '../sso/index.ts';
import type { TeamsService } from '../teams/teams.service.ts';
import type { UsersService } from '../users/users.service.ts';
import { FlashStore } from './flash.ts';
import { createLoginLinkRouter } from './login-link.routes.ts';
import { LoginLinksService } from './login-links.service.ts';
import type { LoginLinksRepos } from './login-links.service.ts';
import { createWebRouter } from './web.routes.ts';

export interface Web {
  /** /settings, /teams/:team, /admin, /login/link/:token, /static/web/*. */
  router: Router;
  loginLinks: LoginLinksService;
  close(): void;
}

/** What the pages are built from (the core gives them; named here so that this folder does not import src/core.ts, which imports it). */
export interface WebDeps {
  config: Config;
  logger: Logger;
  store: Store<LoginLinksRepos & AuditLogRepos>;
  secretBox: SecretBox;
  audit: AuditService;
  access: OrgAccess;
  orgs: OrgsService;
  users: UsersService;
  teams: TeamsService;
  keys: KeysService;
  serviceAccounts: ServiceAccountsService;
  federatedCredentials: FederatedCredentialsService;
  sso: Sso;
  /** SCIM tokens (the admin page's Provisioning section) and the SCIM base URL to paste into the IdP. */
  scim: { tokens: ScimTokensService; baseUrl: string };
  /** Notices of credentials a secret scanner reported public (settings, team page). */
  leakedCredentials: SecretScanningService;
}

/** The browser pages people land on after signing in; they only call services. */
export function createWeb(deps: WebDeps): Web {
  const { sso } = deps;
  const loginLinks = new LoginLinksService(deps.store, deps.audit, deps.config.publicUrl);
  const router = express.Router();
  router.use(createLoginLinkRouter({ links: loginLinks, sessions: sso.sessions, logger: deps.logger, secure: deps.config.publicUrl.startsWith('https://') }));
  router.use(
    createWebRouter({
      users: deps.users,
      keys: deps.keys,
      teams: deps.teams,
      serviceAccounts: deps.serviceAccounts,
      federatedCredentials: deps.federatedCredentials,
      orgs: deps.orgs,
      sso: sso.service,
      ssoLogin: sso.login,
      saml: sso.saml,
      loginTransactionTtlSeconds: deps.config.loginTransactionTtlSeconds,
      identities: sso.identities,
      auditLog: new AuditLog(deps.store, deps.access),
      sessions: sso.sessions,
      sessionPrincipal: (req) => sso.sessionAuthenticator(req),
      flash: new FlashStore(deps.secretBox),
      scimTokens: deps.scim.tokens,
      scimBaseUrl: deps.scim.baseUrl,
      leakedCredentials: deps.leakedCredentials,
    }),
  );
  const sweep = setInterval(() => {
    loginLinks.sweep().catch((err: unknown) => deps.logger.warn({ err }, 'web: sweeping old login links failed'));
  }, 60 * 60_000);
  sweep.unref();
  return { router, loginLinks, close: () => clearInterval(sweep) };
}
