import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Router } from 'express';
import { usePageSession } from './page-session.ts';
import { registerAdminPage } from './pages/admin.routes.ts';
import { registerSettingsPage } from './pages/settings.routes.ts';
import { registerTeamPage } from './pages/team.routes.ts';
import { formAction } from './prg.ts';
import type { WebRoutesDeps } from './web-deps.ts';

/**
 * /settings, /teams/:team, /admin and their forms: the page middleware
 * (page-session.ts), then one module per page (pages/), whose forms end in
 * the one post/redirect/get helper (prg.ts) and are parsed by the API's
 * schemas through the form adapter (form.ts).
 */
export function createWebRouter(d: WebRoutesDeps): Router {
  const router = express.Router();
  const staticDir = fileURLToPath(new URL('./static/', import.meta.url));
  router.use('/static/web', express.static(staticDir, { index: false, fallthrough: false, maxAge: 0 }));

  usePageSession(router, ['/settings', '/teams', '/admin'], d);
  const action = formAction(router, d.flash);
  registerSettingsPage(router, d, action);
  registerTeamPage(router, d, action);
  registerAdminPage(router, d, action);
  return router;
}
