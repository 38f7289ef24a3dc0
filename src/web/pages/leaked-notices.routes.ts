import type { FormAction, Rerender } from '../prg.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/**
 * Dismissing a leaked-credential notice (src/secret-scanning): the owner's on /settings, the team's service
 * accounts' on the team page (its admins and org admins). Kept apart from the pages' own forms.
 */
export function registerSettingsLeakedNotices(d: WebRoutesDeps, action: FormAction, render: Rerender): void {
  action(
    '/settings/leaked-credentials/:id/dismiss',
    () => '/settings',
    async (_req, v, params) => {
      await d.leakedCredentials.dismissMine(v.actor, params.id);
      return { notice: 'The notice was dismissed.' };
    },
    render,
  );
}

export function registerTeamLeakedNotices(d: WebRoutesDeps, action: FormAction, render: Rerender<'/teams/:team'>): void {
  action(
    '/teams/:team/leaked-credentials/:id/dismiss',
    (params) => `/teams/${encodeURIComponent(params.team)}`,
    async (_req, v, params) => {
      await d.leakedCredentials.dismissForTeam(v.actor, params.team, params.id);
      return { notice: 'The notice was dismissed.' };
    },
    render,
  );
}
