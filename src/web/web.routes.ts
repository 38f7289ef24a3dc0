import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Router } from 'express';
import { useNotFoundPage, usePageSession } from './page-session.ts';
import { registerAdminPage } from './pages/admin.routes.ts';
import { registerSettingsPage } from './pages/settings.routes.ts';
import { registerTeamPage } from './pages/team.routes.ts';
import { registerTeamsPage } from './pages/teams.routes.ts';
import { formAction } from './prg.ts';
import type { WebRoutesDeps } from './web-deps.ts';

/** The favicon's cache lifetime: it changes with a release at most, and browsers ask for it on every page otherwise. */
const FAVICON_MAX_AGE_S = 30 * 86_400;

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
  useNotFoundPage(router, d);
  return router;
}
