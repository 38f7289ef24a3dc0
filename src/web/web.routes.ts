import { fileURLToPath } from 'node:url';
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Principal } from '../auth/principal.ts';
import type { PageRequest } from '../db/keyset.ts';
import { AppError, errors } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
import { httpStatusOf } from '../http/errors.ts';
import { errorPages } from '../http/express-app.ts';
import { PAGE_LIMIT_MAX } from '../http/pagination.ts';
import { loginPath } from '../http/return-to.ts';
import { fields, parse } from '../http/validation.ts';
import type { KeysService } from '../keys/keys.service.ts';
import type { OrgsService } from '../orgs/orgs.service.ts';
import type { ServiceAccountsService, ServiceAccountView } from '../service-accounts/service-accounts.service.ts';
import type { SessionManager } from '../sso/session-store.ts';
import { createConnectionBody } from '../sso/sso.routes.ts';
import type { SsoService } from '../sso/sso.service.ts';
import type { IdentitiesService } from '../sso/identities.service.ts';
import type { TeamsService } from '../teams/teams.service.ts';
import type { UsersService } from '../users/users.service.ts';
import type { Flash, FlashStore } from './flash.ts';
import type { Notices, Theme } from './html.ts';
import { adminPage } from './views/admin.ts';
import { errorPage } from './views/common.ts';
import type { Viewer } from './views/common.ts';
import { settingsPage } from './views/settings.ts';
import { teamPage } from './views/team.ts';

export interface WebRoutesDeps {
  users: UsersService;
  keys: KeysService;
  teams: TeamsService;
  serviceAccounts: ServiceAccountsService;
  orgs: OrgsService;
  sso: SsoService;
  identities: IdentitiesService;
  auditLog: AuditLog;
  sessions: SessionManager;
  /** The browser session's person (the SSO feature's session hook, with its require_sso rule). */
  sessionPrincipal: (req: Request) => Promise<Principal | null>;
  flash: FlashStore;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);
const AUDIT_PAGE_SIZE = 50;
/** The pages show a list's first page at the API's largest page size (the key cap keeps key lists well below it). */
const LIST_PAGE: PageRequest = { limit: PAGE_LIMIT_MAX, after: null };
/** 403s that are about what was asked for, not who asks: shown next to the form like bad input. */
const POLICY_REFUSALS = new Set<ErrorCode>(['enterprise_feature', 'personal_keys_disabled']);

export function sendHtml(res: Response, status: number, body: string): void {
  res.status(status).type('html').send(body);
}

/** Form fields as strings (urlencoded bodies are flat; anything else is ignored). */
function formOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (typeof v === 'string' && k !== 'csrf_token') out[k] = v;
  return out;
}

/** An optional whole number from a form field: empty means "not given". */
function optionalInt(min: number, max: number) {
  return z.preprocess((v) => (v === '' || v === undefined ? undefined : Number(v)), z.number({ message: 'must be a whole number' }).int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`).optional());
}

function list(value: string | undefined): string[] | undefined {
  const items = (value ?? '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

/** `group,team,role` per line; the group may itself contain commas (the last two fields are team and role). */
export function parseGroupRules(text: string | undefined): Array<{ group: string; team: string; role: string }> {
  const rules: Array<{ group: string; team: string; role: string }> = [];
  for (const [i, line] of (text ?? '').split(/\r?\n/).entries()) {
    if (!line.trim()) continue;
    const parts = line.split(',');
    if (parts.length < 2) throw errors.validation(`group rules, line ${i + 1}: write "group,team,role" (role: admin, member or viewer)`, [{ path: 'group_roles', message: `line ${i + 1}: write "group,team,role"` }]);
    const hasRole = parts.length >= 3 && ['admin', 'member', 'viewer'].includes(parts.at(-1)!.trim());
    const role = hasRole ? parts.pop()!.trim() : 'member';
    const team = parts.pop()!.trim();
    rules.push({ group: parts.join(',').trim(), team, role });
  }
  return rules;
}

/** The problems of a failed form, field by field, from a validation error's details or a 422's. */
function problemsOf(err: AppError): Notices['problems'] {
  const d = err.details as unknown;
  if (Array.isArray(d)) return d.filter((p): p is { path: string; message: string } => typeof p?.message === 'string').map((p) => ({ field: p.path || 'form', message: p.message }));
  if (d && typeof d === 'object' && Array.isArray((d as { problems?: unknown }).problems)) return (d as { problems: Array<{ field: string; code: string; message: string }> }).problems;
  return undefined;
}

function flashNotices(f: Flash | null): Notices {
  return { notice: f?.notice, error: f?.error };
}

/** A named route parameter (Express 5 types allow arrays for wildcards; these routes have none). */
export function param(req: Request, name: string): string {
  const v = (req.params as Record<string, string | string[] | undefined>)[name];
  return typeof v === 'string' ? v : '';
}

function viewerOf(res: Response): Viewer {
  return res.locals.viewer as Viewer;
}

/** Where a form's page is, for return_to when the session has ended before the POST. */
function pageOf(path: string): string {
  const team = /^\/teams\/([^/?#]+)/.exec(path);
  if (team) return `/teams/${team[1]}`;
  return path.startsWith('/admin') ? '/admin' : '/settings';
}

/** /settings, /teams/:team, /admin and their forms. */
export function createWebRouter(d: WebRoutesDeps): Router {
  const router = express.Router();
  const staticDir = fileURLToPath(new URL('./static/', import.meta.url));
  router.use('/static/web', express.static(staticDir, { index: false, fallthrough: false, maxAge: 0 }));

  const sessionMw = d.sessions.middleware();
  const pages = ['/settings', '/teams', '/admin'];

  // Errors on these paths are pages, not JSON: 4xx say what is wrong, 5xx are generic.
  router.use(
    pages,
    errorPages((view, res) => {
      const viewer = res.locals.viewer as Viewer | undefined;
      return errorPage({ ...view, viewer, theme: viewer?.theme });
    }),
  );
  router.use(pages, sessionMw);
  router.use(pages, (req: Request, res: Response, next: NextFunction) => {
    (async () => {
      const principal = await d.sessionPrincipal(req);
      if (!principal || principal.type !== 'user') {
        const safe = SAFE_METHODS.has(req.method);
        return res.redirect(safe ? 302 : 303, loginPath(safe ? req.originalUrl : pageOf(req.originalUrl)));
      }
      const session = await d.sessions.read(req);
      const me = await d.users.me(principal);
      const viewer: Viewer = {
        actor: { principal, ip: res.locals.clientIp as string, requestId: res.locals.requestId as string },
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
      res.locals.viewer = viewer;
      // Every state change carries the session's CSRF token (hidden form field, or the X-CSRF-Token header).
      if (!SAFE_METHODS.has(req.method) && !d.sessions.verifyCsrf(req, (req.body as Record<string, unknown> | undefined)?.csrf_token)) {
        throw errors.forbidden('this form did not carry your session\'s security token (it may be from an old page or another site); nothing was changed. Reload the page and try again', 'csrf_failed');
      }
      next();
    })().catch(next);
  });

  type Rerender = (req: Request, res: Response, status: number, extras: { notices: Notices; form: Record<string, string> }) => Promise<void>;
  /**
   * A form's POST: on success the outcome goes into the flash and the browser
   * is sent to the page (303, post/redirect/get); input the service refused
   * (400, 409, 422) shows the page again with the problem and what was typed.
   */
  const action =
    (target: (req: Request) => string, run: (req: Request, v: Viewer) => Promise<Flash | void>, rerender: Rerender) =>
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const flash = await run(req, viewerOf(res));
        if (flash) d.flash.set(req, flash);
        res.redirect(303, target(req));
      } catch (err) {
        if (err instanceof AppError && (err.kind === 'invalid' || err.kind === 'conflict' || err.kind === 'unprocessable' || POLICY_REFUSALS.has(err.code))) {
          try {
            await rerender(req, res, httpStatusOf(err), { notices: { error: err.message, problems: problemsOf(err) }, form: formOf(req) });
          } catch (e) {
            next(e);
          }
          return;
        }
        next(err);
      }
    };

  // ---- /settings ----
  const renderSettings: Rerender = async (req, res, status, extras) => {
    const v = viewerOf(res);
    const [org, keys] = await Promise.all([d.orgs.get(v.actor, v.orgSlug), d.keys.listMine(v.actor, LIST_PAGE).then((p) => p.items)]);
    const flash = d.flash.take(req);
    sendHtml(res, status, settingsPage({ viewer: v, org, keys, newKey: flash?.newKey, notices: { ...flashNotices(flash), ...extras.notices }, form: extras.form }));
  };
  router.get('/settings', (req, res, next) => renderSettings(req, res, 200, { notices: {}, form: {} }).catch(next));

  const createKeyForm = z.object({ name: fields.label, expires_in_days: optionalInt(1, 3650) });
  router.post(
    '/settings/keys',
    action(
      () => '/settings',
      async (req, v) => {
        const input = parse(createKeyForm, formOf(req), 'form');
        const k = await d.keys.createPersonal(v.actor, input);
        return { newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: 'personal' } };
      },
      renderSettings,
    ),
  );
  const rotateForm = z.object({ grace_seconds: optionalInt(0, 30 * 86_400) });
  router.post(
    '/settings/keys/:id/rotate',
    action(
      () => '/settings',
      async (req, v) => {
        const { grace_seconds } = parse(rotateForm, formOf(req), 'form');
        const k = await d.keys.rotate(v.actor, param(req, 'id'), grace_seconds ?? 0);
        const old = k.previous;
        return {
          notice: grace_seconds ? `Key ${old.key_id} was rotated; it keeps working until ${old.expires_at?.slice(0, 16).replace('T', ' ')} UTC.` : `Key ${old.key_id} was rotated and revoked.`,
          newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: 'personal' },
        };
      },
      renderSettings,
    ),
  );
  router.post(
    '/settings/keys/:id/revoke',
    action(
      () => '/settings',
      async (req, v) => {
        const k = await d.keys.get(v.actor, param(req, 'id'));
        await d.keys.revoke(v.actor, param(req, 'id'));
        return { notice: `Key ${k.key_id} (${k.name}) was revoked: it stops working at once.` };
      },
      renderSettings,
    ),
  );
  const themeForm = z.object({ theme: z.enum(['light', 'dark', 'system'], { message: 'choose light, dark or system' }) });
  router.post(
    '/settings/theme',
    action(
      () => '/settings',
      async (req, v) => {
        const { theme } = parse(themeForm, formOf(req), 'form');
        await d.users.setTheme(v.actor, theme);
        return { notice: `Theme set to ${theme}.` };
      },
      renderSettings,
    ),
  );

  // ---- /teams/:team ----
  const renderTeam: Rerender = async (req, res, status, extras) => {
    const v = viewerOf(res);
    const name = param(req, 'team');
    const team = await d.teams.get(v.actor, name, LIST_PAGE);
    const org = await d.orgs.get(v.actor, v.orgSlug);
    const myTeamRole = team.members.find((m) => m.username === v.username)?.role ?? null;
    let serviceAccounts: ServiceAccountView[] | null = null;
    try {
      serviceAccounts = (await d.serviceAccounts.listForTeam(v.actor, name, LIST_PAGE)).items;
    } catch (err) {
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
        myTeamRole,
        canManage: v.role === 'admin' || v.instanceAdmin || myTeamRole === 'admin',
        serviceAccounts,
        newKey: flash?.newKey,
        notices: { ...flashNotices(flash), ...extras.notices },
        form: extras.form,
      }),
    );
  };
  const teamUrl = (req: Request) => `/teams/${encodeURIComponent(param(req, 'team'))}`;
  router.get('/teams/:team', (req, res, next) => renderTeam(req, res, 200, { notices: {}, form: {} }).catch(next));

  const inviteForm = z.object({ kind: z.enum(['user', 'service'], { message: 'choose User or Service' }), name: z.string().trim().min(1, 'must not be empty'), role: fields.role.default('member') });
  router.post(
    '/teams/:team/members',
    action(
      teamUrl,
      async (req, v) => {
        const input = parse(inviteForm, formOf(req), 'form');
        if (input.kind === 'service') {
          const name = parse(fields.label, input.name, 'name');
          const sa = await d.serviceAccounts.createForTeam(v.actor, param(req, 'team'), { name });
          return {
            notice: `Service account ${sa.username} was created with write access to ${sa.team}.`,
            newKey: { key: sa.key.key, key_id: sa.key.key_id, name: sa.key.name, expires_at: sa.key.expires_at, owner: sa.username },
          };
        }
        const username = parse(fields.entityName, input.name, 'username');
        const r = await d.teams.putMember(v.actor, param(req, 'team'), username, input.role);
        return { notice: r.created ? `${username} was added as ${input.role}.` : `${username} is now ${input.role}.` };
      },
      renderTeam,
    ),
  );
  const roleForm = z.object({ role: fields.role });
  router.post(
    '/teams/:team/members/:username',
    action(
      teamUrl,
      async (req, v) => {
        const { role } = parse(roleForm, formOf(req), 'form');
        await d.teams.putMember(v.actor, param(req, 'team'), param(req, 'username'), role);
        return { notice: `${param(req, 'username')} is now ${role}.` };
      },
      renderTeam,
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
      renderTeam,
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
      renderTeam,
    ),
  );

  // ---- /admin ----
  type Section = 'sso' | 'policies' | 'users';
  const renderAdmin =
    (section: Section | undefined): Rerender =>
    async (req, res, status, extras) => {
      const v = viewerOf(res);
      // SSO connections first: they need the admin role, so a member gets the 403 page before anything is read.
      const connections = await d.sso.list(v.actor, v.orgSlug);
      const q = req.query as Record<string, unknown>;
      const before = typeof q.before === 'string' && /^[1-9]\d{0,15}$/.test(q.before) ? Number(q.before) : undefined;
      const [org, users, audit] = await Promise.all([
        d.orgs.get(v.actor, v.orgSlug),
        d.users.list(v.actor, v.orgSlug, LIST_PAGE).then((p) => p.items),
        // The page's own pager keeps its ?before=<seq> links.
        d.auditLog.list(v.actor, v.orgSlug, { limit: AUDIT_PAGE_SIZE, after: before !== undefined ? [before] : null }).then((p) => ({ events: p.items, next_cursor: p.next === null ? null : Number(p.next[0]) })),
      ]);
      const identities = await d.identities.byUser(v.actor, v.orgSlug);
      const flash = d.flash.take(req);
      sendHtml(
        res,
        status,
        adminPage({
          viewer: v,
          org,
          callbackUri: d.sso.callbackUri,
          connections,
          users,
          identities,
          audit: { ...audit, before },
          ssoTest: flash?.ssoTest,
          notices: { ...flashNotices(flash), ...extras.notices },
          noticesFor: section,
          form: extras.form,
        }),
      );
    };
  router.get('/admin', (req, res, next) => renderAdmin(undefined)(req, res, 200, { notices: {}, form: {} }).catch(next));

  const refused = (problems: Array<{ field: string; code: string; message: string }>) =>
    new AppError('sso_configuration_invalid', 'The connection was not saved; fix these problems:', { details: { problems } });

  router.post(
    '/admin/sso',
    action(
      () => '/admin#sso',
      async (req, v) => {
        const f = formOf(req);
        const input = parse(
          createConnectionBody,
          {
            issuer: f.issuer ?? '',
            client_id: f.client_id ?? '',
            flow: f.flow,
            response_mode: f.response_mode,
            ...(f.client_secret ? { client_secret: f.client_secret } : {}),
            ...(list(f.scopes) ? { scopes: list(f.scopes) } : {}),
            domains: list(f.domains) ?? [],
            group_roles: parseGroupRules(f.group_roles),
            ...(list(f.allowed_tenant_ids) ? { allowed_tenant_ids: list(f.allowed_tenant_ids) } : {}),
            jit: f.jit === 'on',
            enabled: f.enabled === 'on',
          },
          'form',
        );
        const r = await d.sso.create(v.actor, v.orgSlug, input);
        if (!r.ok) throw refused(r.problems);
        return { notice: `The connection to ${r.connection.issuer} was created. Register ${r.connection.callback_uri} as the callback (sign-in redirect) URI in your IdP.` };
      },
      renderAdmin('sso'),
    ),
  );
  router.post(
    '/admin/sso/:id/test',
    action(
      (req) => `/admin#conn-${param(req, 'id')}`,
      async (req, v) => {
        const c = await d.sso.get(v.actor, v.orgSlug, param(req, 'id'));
        const t = await d.sso.test(v.actor, v.orgSlug, param(req, 'id'));
        return { ssoTest: { id: c.id, ok: t.ok, issuer: c.issuer, problems: t.problems, discovered_issuer: t.discovered_issuer, signing_algorithms: t.signing_algorithms } };
      },
      renderAdmin('sso'),
    ),
  );
  const enabledForm = z.object({ enabled: z.enum(['true', 'false']) });
  router.post(
    '/admin/sso/:id/enabled',
    action(
      () => '/admin#sso',
      async (req, v) => {
        const { enabled } = parse(enabledForm, formOf(req), 'form');
        const r = await d.sso.update(v.actor, v.orgSlug, param(req, 'id'), { enabled: enabled === 'true' });
        if (!r.ok) throw refused(r.problems);
        return { notice: `The connection to ${r.connection.issuer} is ${r.connection.enabled ? 'enabled' : 'disabled'}.` };
      },
      renderAdmin('sso'),
    ),
  );
  router.post(
    '/admin/sso/:id/delete',
    action(
      () => '/admin#sso',
      async (req, v) => {
        const c = await d.sso.get(v.actor, v.orgSlug, param(req, 'id'));
        await d.sso.delete(v.actor, v.orgSlug, c.id);
        return { notice: `The connection to ${c.issuer} was deleted.` };
      },
      renderAdmin('sso'),
    ),
  );
  const policiesForm = z.object({ max_key_lifetime_days: optionalInt(1, 3650) });
  router.post(
    '/admin/policies',
    action(
      () => '/admin#policies',
      async (req, v) => {
        const f = formOf(req);
        const { max_key_lifetime_days } = parse(policiesForm, f, 'form');
        // Unchecked boxes are not sent: absent means off.
        await d.orgs.update(v.actor, v.orgSlug, { policies: { require_sso: f.require_sso === 'on', disable_personal_keys: f.disable_personal_keys === 'on', max_key_lifetime_days: max_key_lifetime_days ?? null } });
        return { notice: 'Policies saved.' };
      },
      renderAdmin('policies'),
    ),
  );
  const provisionForm = z.object({ email: fields.email, username: fields.entityName, role: fields.role.default('member'), display_name: z.preprocess((x) => (x === '' ? undefined : x), fields.displayName.optional()) });
  router.post(
    '/admin/users',
    action(
      () => '/admin#users',
      async (req, v) => {
        const input = parse(provisionForm, formOf(req), 'form');
        const u = await d.users.provision(v.actor, v.orgSlug, input);
        return { notice: `${u.username} <${u.email}> was added as ${u.role}.` };
      },
      renderAdmin('users'),
    ),
  );
  router.post(
    '/admin/users/:username/role',
    action(
      () => '/admin#users',
      async (req, v) => {
        const { role } = parse(roleForm, formOf(req), 'form');
        const u = await d.users.update(v.actor, v.orgSlug, param(req, 'username'), { role });
        return { notice: `${u.username} is now ${u.role}.` };
      },
      renderAdmin('users'),
    ),
  );
  const statusForm = z.object({ status: z.enum(['active', 'deactivated']) });
  router.post(
    '/admin/users/:username/status',
    action(
      () => '/admin#users',
      async (req, v) => {
        const { status } = parse(statusForm, formOf(req), 'form');
        const u = await d.users.update(v.actor, v.orgSlug, param(req, 'username'), { status });
        return { notice: status === 'active' ? `${u.username} was reactivated.` : `${u.username} was deactivated: their keys and sessions stopped working.` };
      },
      renderAdmin('users'),
    ),
  );
  router.post(
    '/admin/users/:username/identities/:id/unlink',
    action(
      () => '/admin#users',
      async (req, v) => {
        const i = await d.identities.unlink(v.actor, v.orgSlug, param(req, 'username'), param(req, 'id'));
        return { notice: `${param(req, 'username')} was unlinked from ${i.issuer} (subject ${i.subject}); their sessions ended, and their next SSO sign-in links the identity it comes with.` };
      },
      renderAdmin('users'),
    ),
  );

  return router;
}
