import type { NextFunction, Request, Response, Router } from 'express';
import type { Principal } from '../auth/principal.ts';
import { asksForHtml } from '../http/browser.ts';
import { SAFE_METHODS, CSRF_FIELD } from '../http/csrf.ts';
import { errors } from '../errors/app-error.ts';
import { errorPages } from '../http/express-app.ts';
import { loginPath } from '../http/return-to.ts';
import type { Theme } from '../html/html.ts';
import type { SessionManager } from '../sso/session-store.ts';
import type { UsersService } from '../users/users.service.ts';
import { errorPage } from './views/common.ts';
import type { Viewer } from './views/common.ts';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The signed-in person, on the web pages (set by the page middleware below). */
    viewer?: Viewer;
  }
}

export interface PageSessionDeps {
  users: UsersService;
  sessions: SessionManager;
  /** The browser session's person (the SSO feature's session hook, with its require_sso rule). */
  sessionPrincipal: (req: Request) => Promise<Principal | null>;
}

/** Where a form's page is, for return_to when the session has ended before the POST. */
function pageOf(path: string): string {
  const team = /^\/teams\/([^/?#]+)/.exec(path);
  if (team) return `/teams/${team[1]}`;
  if (path.startsWith('/teams')) return '/teams';
  return path.startsWith('/admin') ? '/admin' : '/settings';
}

/**
 * What every page and form under `paths` runs first: errors as HTML pages
 * (4xx say what is wrong, 5xx are generic), the session, the signed-in person
 * (res.locals.viewer; the login page otherwise), and the CSRF check of every
 * state change (src/http/csrf.ts: the session's token in the csrf_token field
 * or the X-CSRF-Token header).
 */
export function usePageSession(router: Router, paths: string[], d: PageSessionDeps): void {
  router.use(
    paths,
    errorPages((view, res) => {
      const viewer = res.locals.viewer;
      return errorPage({ ...view, viewer, theme: viewer?.theme });
    }),
  );
  router.use(paths, d.sessions.middleware());
  router.use(paths, (req: Request, res: Response, next: NextFunction) => {
    (async () => {
      const safe = SAFE_METHODS.has(req.method);
      const viewer = await findViewer(req, res, d);
      if (!viewer) return res.redirect(safe ? 302 : 303, loginPath(safe ? req.originalUrl : pageOf(req.originalUrl)));
      res.locals.viewer = viewer;
      if (!safe && !d.sessions.verifyCsrf(req, (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD])) {
        throw errors.forbidden('this form did not carry your session\'s security token (it may be from an old page or another site); nothing was changed. Reload the page and try again', 'csrf_failed');
      }
      next();
    })().catch(next);
  });
}

/** The signed-in person of a request the session middleware has seen, or null (no session, or not a person's). */
async function findViewer(req: Request, res: Response, d: PageSessionDeps): Promise<Viewer | null> {
  const principal = await d.sessionPrincipal(req);
  if (!principal || principal.type !== 'user') return null;
  const session = await d.sessions.read(req);
  const me = await d.users.me(principal);
  return {
    actor: { principal, ip: res.locals.clientIp, requestId: res.locals.requestId },
    csrf: session?.data.csrfToken ?? '',
    username: me.username,
    email: me.email ?? '',
    displayName: me.display_name,
    orgSlug: principal.orgSlug,
    role: me.orgs[0]?.role ?? 'viewer',
    instanceAdmin: 'instance_admin' in me && me.instance_admin === true,
    theme: ('theme' in me ? me.theme : 'system') as Theme,
    teams: me.teams.map((t) => ({ name: t.name, role: t.role })),
  };
}

/** Paths whose unknown pages stay JSON for their clients (the API, SCIM, the token endpoint, the hot paths, static files). */
const API_PATHS = /^\/(gateway|scim|oidc|auth|\.well-known|static)(\/|$)/;

/**
 * The last handler of the pages (management-app.ts mounts them last): a path nothing answered, asked for by
 * a browser, gets express-app.ts's 404 as a page in the one layout — with the signed-in person's header and
 * theme when there is a session. API clients keep the JSON answer. A session that cannot be read leaves the
 * page without a person: the answer is the 404 either way.
 */
export function useNotFoundPage(router: Router, d: PageSessionDeps): void {
  const sessions = d.sessions.middleware();
  router.use((req: Request, res: Response, next: NextFunction) => {
    // A page's own template (under /settings, /teams, /admin, with its person) stays.
    if (res.locals.errorPage || !(req.method === 'GET' || req.method === 'HEAD') || !asksForHtml(req) || API_PATHS.test(req.path)) return next();
    res.locals.errorPage = (view, r) => errorPage({ ...view, viewer: r.locals.viewer, theme: r.locals.viewer?.theme });
    sessions(req, res, (err?: unknown) => {
      if (err !== undefined && err !== null) return next();
      findViewer(req, res, d).then(
        (viewer) => {
          if (viewer) res.locals.viewer = viewer;
          next();
        },
        () => next(),
      );
    });
  });
}
