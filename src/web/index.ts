import express from 'express';
import type { Router } from 'express';
import { AuditLog } from '../audit/audit-log.ts';
import type { Core } from '../core.ts';
import type { Sso } from '../sso/index.ts';
import { FlashStore } from './flash.ts';
import { createLoginLinkRouter } from './login-link.routes.ts';
import { LoginLinksService } from './login-links.service.ts';
import { createWebRouter } from './web.routes.ts';

export interface Web {
  /** /settings, /teams/:team, /admin, /login/link/:token, /static/web/*. */
  router: Router;
  loginLinks: LoginLinksService;
  close(): void;
}

export type WebDeps = Pick<Core, 'config' | 'logger' | 'store' | 'secretBox' | 'audit' | 'access' | 'orgs' | 'users' | 'teams' | 'keys' | 'serviceAccounts'> & { sso: Sso };

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
      orgs: deps.orgs,
      sso: sso.service,
      identities: sso.identities,
      auditLog: new AuditLog(deps.store, deps.access),
      sessions: sso.sessions,
      sessionPrincipal: (req) => sso.sessionAuthenticator(req),
      flash: new FlashStore(deps.secretBox),
    }),
  );
  const sweep = setInterval(() => {
    loginLinks.sweep().catch((err: unknown) => deps.logger.warn({ err }, 'web: sweeping old login links failed'));
  }, 60 * 60_000);
  sweep.unref();
  return { router, loginLinks, close: () => clearInterval(sweep) };
}
