import type { Router } from 'express';
import { z } from 'zod';
import { AppError, errors } from '../../errors/app-error.ts';
import { fields, parse } from '../../http/validation.ts';
import { createBody as createServiceAccountBody } from '../../service-accounts/service-accounts.routes.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { putMemberBody } from '../../teams/teams.routes.ts';
import { formOf, parseForm } from '../form.ts';
import { flashNotices, LIST_PAGE, viewerOf } from '../prg.ts';
import { sendHtml } from '../../html/html.ts';
import type { FormAction, Params, Rerender } from '../prg.ts';
import { teamPage } from '../views/team.ts';
import { registerTeamLeakedNotices } from './leaked-notices.routes.ts';
import { registerTrustRuleActions, trustRulesOf } from './team-trust-rules.ts';
import { keysOf, registerServiceAccountKeyActions } from './team-keys.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** The invite form's one page-only field: whom the name is for (the rest is the API's input of either). */
const inviteKind = z.object({ kind: z.enum(['user', 'service'], { error: 'choose User or Service' }) });

/** /teams/:team: members, service accounts and their keys. */
export function registerTeamPage(router: Router, d: WebRoutesDeps, action: FormAction): void {
  const render: Rerender<'/teams/:team'> = async (req, res, status, extras, params) => {
    const v = viewerOf(res);
    const name = params.team;
    const team = await d.teams.get(v.actor, name, LIST_PAGE);
    const [org, access, leaked] = await Promise.all([d.orgs.get(v.actor, v.orgSlug), d.teams.accessTo(v.actor, name), d.leakedCredentials.listForTeam(v.actor, name)]);
    let serviceAccounts: ServiceAccountView[] | null = null;
    try {
      serviceAccounts = (await d.serviceAccounts.listForTeam(v.actor, name, LIST_PAGE)).items;
    } catch (err) {
      // Not allowed to see them (the service decides): the page shows no such section.
      if (!(err instanceof AppError && err.kind === 'forbidden')) throw err;
    }
    const trustRules = serviceAccounts && access.canManage ? await trustRulesOf(d, v.actor, serviceAccounts) : new Map();
    const keys = serviceAccounts && access.canManage ? await keysOf(d, v.actor, serviceAccounts) : new Map();
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
        scimManaged: access.scimManaged,
        serviceAccounts,
        trustRules,
        keys,
        newKey: flash?.newKey,
        leaked,
        notices: { ...flashNotices(flash), ...extras.notices },
        form: extras.form,
      }),
    );
  };
  const teamUrl = (params: Params<'/teams/:team'>) => `/teams/${encodeURIComponent(params.team)}`;
  router.get('/teams/:team', (req, res, next) => render(req, res, 200, { notices: {}, form: {} }, req.params).catch(next));

  action(
    '/teams/:team/members',
    teamUrl,
    async (req, v, params) => {
      const { kind } = parse(inviteKind, formOf(req), 'form');
      if (kind === 'service') {
        const sa = await d.serviceAccounts.createForTeam(v.actor, params.team, parseForm(createServiceAccountBody, req));
        if (sa.key === null) return { notice: `Keyless service account ${sa.username} was created with write access to ${sa.team}: add a trust rule to let a workload act as it.` };
        return {
          notice: `Service account ${sa.username} was created with write access to ${sa.team}.`,
          newKey: { key: sa.key.key, key_id: sa.key.key_id, name: sa.key.name, expires_at: sa.key.expires_at, owner: sa.username },
        };
      }
      // A person: the name is the API's :username, the role its body.
      const username = parse(fields.entityName, (formOf(req).name ?? '').trim(), 'username');
      const { role } = parseForm(putMemberBody, req);
      try {
        const r = await d.teams.putMember(v.actor, params.team, username, role);
        return { notice: r.created ? `${username} was added as ${role}.` : `${username} is now ${role}.` };
      } catch (err) {
        // Not found while the team is there (and the viewer may see it): the name typed is nobody's. That is a
        // problem of the field, shown beside it, not a 404 page that loses what was typed.
        if (!(err instanceof AppError && err.kind === 'not_found')) throw err;
        await d.teams.accessTo(v.actor, params.team);
        const message = `no one in your organization has the username "${username}" (a person joins the organization by signing in through SSO or being added on the admin page)`;
        throw errors.validation(`name: ${message}`, [{ field: 'name', code: 'unknown_user', message }]);
      }
    },
    render,
  );
  action(
    '/teams/:team/members/:username',
    teamUrl,
    async (req, v, params) => {
      const { role } = parseForm(putMemberBody, req);
      await d.teams.putMember(v.actor, params.team, params.username, role);
      return { notice: `${params.username} is now ${role}.` };
    },
    render,
  );
  action(
    '/teams/:team/members/:username/remove',
    teamUrl,
    async (req, v, params) => {
      await d.teams.removeMember(v.actor, params.team, params.username);
      return { notice: params.username === v.username ? `You left ${params.team}.` : `${params.username} was removed from ${params.team}.` };
    },
    render,
  );
  action(
    '/teams/:team/service-accounts/:id/delete',
    teamUrl,
    async (req, v, params) => {
      const sa = await d.serviceAccounts.get(v.actor, params.id);
      // The form is the team's: an account of another team is not found here.
      if (sa.team !== params.team) throw errors.notFound(`service account "${params.id}" of team "${params.team}"`);
      await d.serviceAccounts.delete(v.actor, sa.id);
      return { notice: `Service account ${sa.username} was deleted; its keys stopped working.` };
    },
    render,
  );
  registerTeamLeakedNotices(d, action, render);
  registerTrustRuleActions(d, action, render);
  registerServiceAccountKeyActions(d, action, render);
}
