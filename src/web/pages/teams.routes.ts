import type { Router } from 'express';
import { createTeamBody } from '../../teams/teams.routes.ts';
import { sendHtml } from '../../html/html.ts';
import { parseForm } from '../form.ts';
import { flashNotices, LIST_PAGE, viewerOf } from '../prg.ts';
import type { FormAction, Rerender } from '../prg.ts';
import { teamsPage } from '../views/teams.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** /teams: the teams the viewer sees, and creating one (org admins). */
export function registerTeamsPage(router: Router, d: WebRoutesDeps, action: FormAction): void {
  const render: Rerender = async (req, res, status, extras) => {
    const v = viewerOf(res);
    const all = (await d.teams.list(v.actor, v.orgSlug, LIST_PAGE)).items;
    // The API lists every team to every member; the page shows a member their own (an admin manages them all).
    const mine = new Set(v.teams.map((t) => t.name));
    const teams = v.role === 'admin' ? all : all.filter((t) => mine.has(t.name));
    const flash = d.flash.take(req);
    sendHtml(res, status, teamsPage({ viewer: v, teams, notices: { ...flashNotices(flash), ...extras.notices }, form: extras.form }));
  };
  router.get('/teams', (req, res, next) => render(req, res, 200, { notices: {}, form: {} }, {}).catch(next));

  action(
    '/teams',
    () => '/teams',
    async (req, v) => {
      const t = await d.teams.create(v.actor, v.orgSlug, parseForm(createTeamBody, req).name);
      return { notice: `Team ${t.name} was created, with you as its admin.` };
    },
    render,
  );
}
