import type { Request, Router } from 'express';
import { z } from 'zod';
import { AppError, errors } from '../../errors/app-error.ts';
import { fields, parse } from '../../http/validation.ts';
import { createBody as createServiceAccountBody } from '../../service-accounts/service-accounts.routes.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { putMemberBody } from '../../teams/teams.routes.ts';
import { formOf, parseForm } from '../form.ts';
import { flashNotices, LIST_PAGE, param, viewerOf } from '../prg.ts';
import { sendHtml } from '../../html/html.ts';
import type { FormAction, Rerender } from '../prg.ts';
import { teamPage } from '../views/team.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** The invite form's one page-only field: whom the name is for (the rest is the API's input of either). */
const inviteKind = z.object({ kind: z.enum(['user', 'service'], { error: 'choose User or Service' }) });

/** /teams/:team: members and service accounts. */
export function registerTeamPage(router: Router, d: WebRoutesDeps, action: FormAction): void {
  const render: Rerender = async (req, res, status, extras) => {
    const v = viewerOf(res);
    const name = param(req, 'team');
    const team = await d.teams.get(v.actor, name, LIST_PAGE);
    const [org, access] = await Promise.all([d.orgs.get(v.actor, v.orgSlug), d.teams.accessTo(v.actor, name)]);
    let serviceAccounts: ServiceAccountView[] | null = null;
    try {
      serviceAccounts = (await d.serviceAccounts.listForTeam(v.actor, name, LIST_PAGE)).items;
    } catch (err) {
      // Not allowed to see them (the service decides): the page shows no such section.
      if (!(err instanceof AppError && err.kind === 'forbidden')) throw err;
    }
    const flash = d.flash.take(req);
    sendHtml(
      res,
      status,
      teamPage({
        viewer: v,
        team,
        plan: org.plan,
        members: team.members,
        myTeamRole: access.teamRole,
        canManage: access.canManage,
        serviceAccounts,
        newKey: flash?.newKey,
        notices: { ...flashNotices(flash), ...extras.notices },
        form: extras.form,
      }),
    );
  };
  const teamUrl = (req: Request) => `/teams/${encodeURIComponent(param(req, 'team'))}`;
  router.get('/teams/:team', (req, res, next) => render(req, res, 200, { notices: {}, form: {} }).catch(next));

  router.post(
    '/teams/:team/members',
    action(
      teamUrl,
      async (req, v) => {
        const { kind } = parse(inviteKind, formOf(req), 'form');
        if (kind === 'service') {
          const sa = await d.serviceAccounts.createForTeam(v.actor, param(req, 'team'), parseForm(createServiceAccountBody, req));
          return {
            notice: `Service account ${sa.username} was created with write access to ${sa.team}.`,
            newKey: { key: sa.key.key, key_id: sa.key.key_id, name: sa.key.name, expires_at: sa.key.expires_at, owner: sa.username },
          };
        }
        // A person: the name is the API's :username, the role its body.
        const username = parse(fields.entityName, (formOf(req).name ?? '').trim(), 'username');
        const { role } = parseForm(putMemberBody, req);
        const r = await d.teams.putMember(v.actor, param(req, 'team'), username, role);
        return { notice: r.created ? `${username} was added as ${role}.` : `${username} is now ${role}.` };
      },
      render,
    ),
  );
  router.post(
    '/teams/:team/members/:username',
    action(
      teamUrl,
      async (req, v) => {
        const { role } = parseForm(putMemberBody, req);
        await d.teams.putMember(v.actor, param(req, 'team'), param(req, 'username'), role);
        return { notice: `${param(req, 'username')} is now ${role}.` };
      },
      render,
    ),
  );
  router.post(
    '/teams/:team/members/:username/remove',
    action(
      teamUrl,
      async (req, v) => {
        await d.teams.removeMember(v.actor, param(req, 'team'), param(req, 'username'));
        return { notice: param(req, 'username') === v.username ? `You left ${param(req, 'team')}.` : `${param(req, 'username')} was removed from ${param(req, 'team')}.` };
      },
      render,
    ),
  );
  router.post(
    '/teams/:team/service-accounts/:id/delete',
    action(
      teamUrl,
      async (req, v) => {
        const sa = await d.serviceAccounts.get(v.actor, param(req, 'id'));
        // The form is the team's: an account of another team is not found here.
        if (sa.team !== param(req, 'team')) throw errors.notFound(`service account "${param(req, 'id')}" of team "${param(req, 'team')}"`);
        await d.serviceAccounts.delete(v.actor, sa.id);
        return { notice: `Service account ${sa.username} was deleted; its keys stopped working.` };
      },
      render,
    ),
  );
}
