import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { asksForHtml } from '../http/browser.ts';
import type { Router } from 'express';
import { usePageSession } from './page-session.ts';
import { registerAdminPage } from './pages/admin.routes.ts';
import { registerSettingsPage } from './pages/settings.routes.ts';
import { registerTeamPage } from './pages/team.routes.ts';
import { registerTeamsPage } from './pages/teams.routes.ts';
import { formAction } from './prg.ts';
import { errorPage } from './views/common.ts';
import type { WebRoutesDeps } from './web-deps.ts';

/** The favicon's cache lifetime: it changes with a release at most, and browsers ask for it on every page otherwise. */
const FAVICON_MAX_AGE_S = 30 * 86_400;
/** Paths whose unknown pages stay JSON for their clients (the API, SCIM, the token endpoint, the hot paths). */
const API_PATHS = /^\/(gateway|scim|oidc|auth|\.well-known|static)(\/|$)/;

/**
 * /settings, /teams, /teams/:team, /admin and their forms: the page middleware
 * (page-session.ts), then one module per page (pages/), whose forms end in
 * the one post/redirect/get helper (prg.ts) and are parsed by the API's
 * schemas through the form adapter (form.ts).
 */
export function createWebRouter(d: WebRoutesDeps): Router {
  const router = express.Router();
  const staticDir = fileURLToPath(new URL('./static/', import.meta.url));
  router.use('/static/web', express.static(staticDir, { index: false, fallthrough: false, maxAge: 0 }));
  // An SVG at the path browsers ask for by themselves (the layout links it too), read once.
  const favicon = readFileSync(new URL('./static/favicon.svg', import.meta.url));
  router.get('/favicon.ico', (_req, res) => {
    res.set('Cache-Control', `public, max-age=${FAVICON_MAX_AGE_S}`).type('image/svg+xml').send(favicon);
  });

  usePageSession(router, ['/settings', '/teams', '/admin'], d);
  const action = formAction(router, d.flash);
  registerSettingsPage(router, d, action);
  registerTeamsPage(router, d, action);
  registerTeamPage(router, d, action);
  registerAdminPage(router, d, action);
  // Last of all routers (management-app.ts mounts the pages last): a path nothing answered, asked for by a
  // browser, gets the 404 of express-app.ts as a page in the one layout; API clients keep the JSON answer.
  router.use((req, res, next) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && asksForHtml(req) && !API_PATHS.test(req.path)) {
      // A page's own template (with the signed-in person, under /settings, /teams, /admin) stays.
      res.locals.errorPage ??= (view) => errorPage(view);
    }
    next();
  });
  return router;
}
