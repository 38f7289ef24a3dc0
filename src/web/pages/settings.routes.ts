import type { Router } from 'express';
import { createKeyBody, rotateKeyBody } from '../../keys/keys.routes.ts';
import { prefersJson } from '../../http/browser.ts';
import { themeBody } from '../../users/users.routes.ts';
import { parseForm } from '../form.ts';
import { flashNotices, LIST_PAGE, viewerOf } from '../prg.ts';
import { sendHtml } from '../../html/html.ts';
import type { FormAction, Rerender } from '../prg.ts';
import { settingsPage } from '../views/settings.ts';
import { registerSettingsLeakedNotices } from './leaked-notices.routes.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** /settings: your keys and your theme. */
export function registerSettingsPage(router: Router, d: WebRoutesDeps, action: FormAction): void {
  const render: Rerender = async (req, res, status, extras) => {
    const v = viewerOf(res);
    const [org, keys, leaked] = await Promise.all([d.orgs.get(v.actor, v.orgSlug), d.keys.listMine(v.actor, LIST_PAGE).then((p) => p.items), d.leakedCredentials.listMine(v.actor)]);
    const flash = d.flash.take(req);
    sendHtml(res, status, settingsPage({ viewer: v, org, keys, newKey: flash?.newKey, leaked, notices: { ...flashNotices(flash), ...extras.notices }, form: extras.form }));
  };
  const back = () => '/settings';
  router.get('/settings', (req, res, next) => render(req, res, 200, { notices: {}, form: {} }, {}).catch(next));

  action(
    '/settings/keys',
    back,
    async (req, v) => {
      const k = await d.keys.createPersonal(v.actor, parseForm(createKeyBody, req));
      return { newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: 'personal' } };
    },
    render,
  );
  action(
    '/settings/keys/:id/rotate',
    back,
    async (req, v, params) => {
      const { grace_seconds, expires_in_days } = parseForm(rotateKeyBody, req);
      const k = await d.keys.rotate(v.actor, params.id, grace_seconds, { expiresInDays: expires_in_days });
      const old = k.previous;
      return {
        notice: grace_seconds ? `Key ${old.key_id} was rotated; it keeps working until ${old.expires_at?.slice(0, 16).replace('T', ' ')} UTC.` : `Key ${old.key_id} was rotated and revoked.`,
        newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: 'personal' },
      };
    },
    render,
  );
  action(
    '/settings/keys/:id/revoke',
    back,
    async (req, v, params) => {
      const k = await d.keys.get(v.actor, params.id);
      await d.keys.revoke(v.actor, params.id);
      return { notice: `Key ${k.key_id} (${k.name}) was revoked: it stops working at once.` };
    },
    render,
  );
  // The theme form's script (static/web.js) posts the choice as soon as it is made and asks for no page back:
  // 204, and no flash (a "Theme set" notice would otherwise wait for the next page). The form without the
  // script posts as every form does, below.
  router.post('/settings/theme', (req, res, next) => {
    if (!prefersJson(req)) return next();
    const { theme } = parseForm(themeBody, req);
    d.users.setTheme(viewerOf(res).actor, theme).then(() => res.status(204).end(), next);
  });
  action(
    '/settings/theme',
    back,
    async (req, v) => {
      const { theme } = parseForm(themeBody, req);
      await d.users.setTheme(v.actor, theme);
      return { notice: `Theme set to ${theme}.` };
    },
    render,
  );
  registerSettingsLeakedNotices(d, action, render);
}
