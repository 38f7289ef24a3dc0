import type { Router } from 'express';
import { policies } from '../../orgs/orgs.routes.ts';
import { createScimTokenBody } from '../../scim/scim-tokens.routes.ts';
import { createConnectionBody, createSamlConnectionBody, patchBody as patchConnectionBody } from '../../sso/sso.routes.ts';
import { provisionUserBody, updateUserBody } from '../../users/users.routes.ts';
import { formInput, formOf, parseForm, parseGroupRules } from '../form.ts';
import { parse } from '../../http/validation.ts';
import { AppError, errors } from '../../errors/app-error.ts';
import { GOOGLE_ISSUER, PROVIDERS } from '../../sso/setup-advice.ts';
import type { Provider } from '../../sso/setup-advice.ts';
import type { z } from 'zod';
import { flashNotices, LIST_PAGE, viewerOf } from '../prg.ts';
import { sendHtml } from '../../html/html.ts';
import type { FormAction, Rerender } from '../prg.ts';
import { adminPage } from '../views/admin.ts';
import { page } from '../views/common.ts';
import { testLoginStartBody, testReportBody } from '../views/sso-setup.ts';
import { setBindingCookie } from '../../sso/login.routes.ts';
import { SsoLoginService } from '../../sso/sso-login.service.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

const AUDIT_PAGE_SIZE = 50;
/** The enable/disable buttons post only `enabled`: parsed alone, so no other switch of the connection is touched. */
const enabledBody = patchConnectionBody.pick({ enabled: true });

type Section = 'sso' | 'sso-create' | 'saml-create' | 'sso-edit' | 'policies' | 'users' | 'scim';
/** The edit form has no Enabled box (its own button does that): a missing box must not read as "off". */
// The page's edit form is OIDC's (a form's absent checkbox reads as false: SAML's booleans would be sent on every edit).
const editBody = patchConnectionBody.omit({ enabled: true, metadata_url: true, metadata_xml: true, entity_id: true, sso_url: true, certificates: true, want_assertions_signed: true, want_response_signed: true, allow_idp_initiated: true });
const CLAIMS = ['email', 'name', 'username', 'groups'] as const;
const isProvider = (x: unknown): x is Provider => typeof x === 'string' && (PROVIDERS as readonly string[]).includes(x);

/** What a save's warnings add to its notice: group rules that may do nothing, said when saving too. */
const warned = (w: Array<{ message: string }>) => (w.length ? ` Warning: ${w.map((x) => x.message).join('; ')}.` : '');

/**
 * The guided setup's form: the fields its IdP needs become the API's input (Azure: the tenant ID makes the
 * issuer, a multitenant app also lists its own tenant; Google: its one issuer), then the API's schema judges.
 */
function setupInput(form: Record<string, string>): Record<string, string> {
  const f = { ...form };
  if (f.provider === 'google') f.issuer = GOOGLE_ISSUER;
  if (f.provider === 'azure') {
    const tenant = (f.tenant_id ?? '').trim();
    if (f.multitenant === 'on') {
      f.issuer = 'https://login.microsoftonline.com/organizations/v2.0';
      if (tenant) f.allowed_tenant_ids = `${tenant} ${f.allowed_tenant_ids ?? ''}`;
    } else {
      if (!tenant) throw errors.validation('enter the Directory (tenant) ID', [{ field: 'tenant_id', code: 'required', message: 'the Directory (tenant) ID from the app registration\'s Overview is required' }]);
      f.issuer = `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/v2.0`;
    }
  }
  return f;
}

/** The SAML edit form's fields (its checkboxes are all on it, so an absent one is "off"). */
const samlEditBody = patchConnectionBody.pick({ metadata_url: true, metadata_xml: true, claims: true, domains: true, group_roles: true, jit: true, want_assertions_signed: true, want_response_signed: true, allow_idp_initiated: true });

/** A SAML form (create or edit) as its API body: blank metadata fields are left out, the attributes are one object. */
function samlInput<S extends z.ZodObject<z.ZodRawShape>>(schema: S, form: Record<string, string>): z.output<S> {
  const input = formInput(schema, form, { group_roles: parseGroupRules });
  if (form.domains !== undefined && input.domains === undefined) input.domains = [];
  input.claims = Object.fromEntries(CLAIMS.map((k) => [k, form[`claims_${k}`]?.trim()]).filter(([, v]) => v));
  return parse(schema, input, 'form');
}

/** The edit form as a PATCH: a blank secret keeps the stored one, emptied lists are emptied, the claims are one object. */
function editInput(form: Record<string, string>): z.output<typeof editBody> {
  const input = formInput(editBody, form, { group_roles: parseGroupRules });
  if (form.remove_client_secret === 'on') input.client_secret = null;
  else if (!form.client_secret?.trim()) delete input.client_secret;
  for (const k of ['domains', 'allowed_tenant_ids'] as const) if (form[k] !== undefined && input[k] === undefined) input[k] = [];
  input.claims = Object.fromEntries(CLAIMS.map((k) => [k, form[`claims_${k}`]?.trim()]).filter(([, v]) => v));
  return parse(editBody, input, 'form');
}

const refused = (problems: Array<{ field: string; code: string; message: string }>) =>
  new AppError('sso_configuration_invalid', 'The connection was not saved; fix these problems:', { problems });

/** /admin: SSO connections, policies, users, provisioning (SCIM tokens), the audit log. */
export function registerAdminPage(router: Router, d: WebRoutesDeps, action: FormAction): void {
  const render =
    (section: Section | undefined, editing?: string): Rerender =>
    async (req, res, status, extras) => {
      const v = viewerOf(res);
      // SSO connections first: they need the admin role, so a member gets the 403 page before anything is read.
      const connections = await d.sso.list(v.actor, v.orgSlug);
      const q = req.query as Record<string, unknown>;
      const before = typeof q.before === 'string' && /^[1-9]\d{0,15}$/.test(q.before) ? Number(q.before) : undefined;
      const [org, users, scimTokens, audit] = await Promise.all([
        d.orgs.get(v.actor, v.orgSlug),
        d.users.list(v.actor, v.orgSlug, LIST_PAGE).then((p) => p.items),
        d.scimTokens.list(v.actor, v.orgSlug),
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
          scim: { baseUrl: d.scimBaseUrl, tokens: scimTokens, newToken: flash?.newScimToken },
          audit: { ...audit, before },
          ssoTest: flash?.ssoTest,
          provider: isProvider(extras.form.provider) ? extras.form.provider : isProvider(q.provider) ? q.provider : undefined,
          editing,
          samlSetup: q.saml === '1',
          notices: { ...flashNotices(flash), ...extras.notices },
          noticesFor: section,
          form: extras.form,
        }),
      );
    };
  router.get('/admin', (req, res, next) => render(undefined)(req, res, 200, { notices: {}, form: {} }, {}).catch(next));

  action(
    '/admin/sso',
    () => '/admin#sso',
    async (req, v) => {
      const input = parse(createConnectionBody, formInput(createConnectionBody, setupInput(formOf(req)), { group_roles: parseGroupRules }), 'form');
      const r = await d.sso.create(v.actor, v.orgSlug, input);
      if (!r.ok) throw refused(r.problems);
      return { notice: `The connection to ${r.connection.issuer} was created. Register ${r.connection.callback_uri} as the callback (sign-in redirect) URI in your IdP.${warned(r.connection.warnings)}` };
    },
    render('sso-create'),
  );
  action(
    '/admin/sso/saml',
    () => '/admin#sso',
    async (req, v) => {
      const r = await d.sso.create(v.actor, v.orgSlug, samlInput(createSamlConnectionBody, { ...formOf(req), kind: 'saml' }));
      if (!r.ok) throw refused(r.problems);
      return { notice: `The SAML connection to ${r.connection.issuer} was created. Register its ACS URL ${r.connection.saml?.acs_url ?? ''} and SP entity ID ${r.connection.saml?.sp_entity_id ?? ''} in your IdP.${warned(r.connection.warnings)}` };
    },
    render('saml-create'),
  );
  action(
    '/admin/sso/:id/saml-edit',
    (params) => `/admin#conn-${params.id}`,
    async (req, v, params) => {
      const r = await d.sso.update(v.actor, v.orgSlug, params.id, samlInput(samlEditBody, formOf(req)));
      if (!r.ok) throw refused(r.problems);
      return { notice: `The SAML connection to ${r.connection.issuer} was saved.${warned(r.connection.warnings)}` };
    },
    (req, res, status, extras, params) => render('sso-edit', params.id)(req, res, status, extras, params),
  );
  action(
    '/admin/sso/:id/edit',
    (params) => `/admin#conn-${params.id}`,
    async (req, v, params) => {
      const r = await d.sso.update(v.actor, v.orgSlug, params.id, editInput(formOf(req)));
      if (!r.ok) throw refused(r.problems);
      return { notice: `The connection to ${r.connection.issuer} was saved; the discovery check passed.${warned(r.connection.warnings)}` };
    },
    (req, res, status, extras, params) => render('sso-edit', params.id)(req, res, status, extras, params),
  );
  // Test login: started here (an org admin's form, CSRF-checked by the page middleware), in a new tab. The
  // page links on to the IdP rather than redirecting: the admin page's CSP keeps form submissions to 'self'.
  router.post('/admin/sso/:id/test-login', async (req, res, next) => {
    try {
      const v = viewerOf(res);
      const params = req.params;
      const binding = SsoLoginService.newBinding();
      const connection = await d.sso.connectionForAdmin(v.actor, v.orgSlug, params.id);
      const started = connection.kind === 'saml' ? { url: await d.saml.startTestUrl(connection, req.sessionID, binding) } : await d.ssoLogin.startTest(v.actor, v.orgSlug, params.id, req.sessionID, binding);
      setBindingCookie(res, binding, d.loginTransactionTtlSeconds);
      res.setHeader('Cache-Control', 'no-store');
      const c = await d.sso.get(v.actor, v.orgSlug, params.id);
      sendHtml(res, 200, page(v, 'Test login', 'admin', testLoginStartBody(c.issuer, started.url)));
    } catch (err) {
      next(err);
    }
  });
  // The report, to the session that started the test only (its hash is sealed in it).
  router.get('/admin/sso/test-report', async (req, res, next) => {
    try {
      const v = viewerOf(res);
      const q = req.query as Record<string, unknown>;
      const report = typeof q.r === 'string' ? d.ssoLogin.openTestReport(q.r, req.sessionID) : null;
      if (!report) throw errors.notFound('test login report (it is shown once to the admin session that started the test, for 10 minutes)');
      // Still an admin of the connection's organization.
      await d.sso.get(v.actor, v.orgSlug, report.connection_id);
      res.setHeader('Cache-Control', 'no-store');
      sendHtml(res, 200, page(v, 'Test login', 'admin', testReportBody(report)));
    } catch (err) {
      next(err);
    }
  });
  action(
    '/admin/sso/:id/test',
    (params) => `/admin#conn-${params.id}`,
    async (req, v, params) => {
      const c = await d.sso.get(v.actor, v.orgSlug, params.id);
      const t = await d.sso.test(v.actor, v.orgSlug, params.id);
      return { ssoTest: { id: c.id, ok: t.ok, issuer: c.issuer, problems: t.problems, discovered_issuer: t.discovered_issuer, signing_algorithms: t.signing_algorithms } };
    },
    render('sso'),
  );
  action(
    '/admin/sso/:id/enabled',
    () => '/admin#sso',
    async (req, v, params) => {
      const r = await d.sso.update(v.actor, v.orgSlug, params.id, parseForm(enabledBody, req));
      if (!r.ok) throw refused(r.problems);
      return { notice: `The connection to ${r.connection.issuer} is ${r.connection.enabled ? 'enabled' : 'disabled'}.` };
    },
    render('sso'),
  );
  action(
    '/admin/sso/:id/delete',
    () => '/admin#sso',
    async (req, v, params) => {
      const c = await d.sso.get(v.actor, v.orgSlug, params.id);
      await d.sso.delete(v.actor, v.orgSlug, c.id);
      return { notice: `The connection to ${c.issuer} was deleted.` };
    },
    render('sso'),
  );
  action(
    '/admin/policies',
    () => '/admin#policies',
    async (req, v) => {
      // The form shows every policy: unticked boxes are off, an empty lifetime is no limit (form.ts).
      await d.orgs.update(v.actor, v.orgSlug, { policies: parseForm(policies, req) });
      return { notice: 'Policies saved.' };
    },
    render('policies'),
  );
  action(
    '/admin/users',
    () => '/admin#users',
    async (req, v) => {
      const u = await d.users.provision(v.actor, v.orgSlug, parseForm(provisionUserBody, req));
      return { notice: `${u.username} <${u.email}> was added as ${u.role}.` };
    },
    render('users'),
  );
  action(
    '/admin/users/:username/role',
    () => '/admin#users',
    async (req, v, params) => {
      const { role } = parseForm(updateUserBody, req);
      const u = await d.users.update(v.actor, v.orgSlug, params.username, { role });
      return { notice: `${u.username} is now ${u.role}.` };
    },
    render('users'),
  );
  action(
    '/admin/users/:username/status',
    () => '/admin#users',
    async (req, v, params) => {
      const { status } = parseForm(updateUserBody, req);
      const u = await d.users.update(v.actor, v.orgSlug, params.username, { status });
      return { notice: status === 'active' ? `${u.username} was reactivated.` : `${u.username} was deactivated: their keys and sessions stopped working.` };
    },
    render('users'),
  );
  action(
    '/admin/users/:username/identities/:id/unlink',
    () => '/admin#users',
    async (req, v, params) => {
      const i = await d.identities.unlink(v.actor, v.orgSlug, params.username, params.id);
      return { notice: `${params.username} was unlinked from ${i.issuer} (subject ${i.subject}); their sessions ended, and their next SSO sign-in links the identity it comes with.` };
    },
    render('users'),
  );
  action(
    '/admin/scim/tokens',
    () => '/admin#scim',
    async (req, v) => {
      const t = await d.scimTokens.create(v.actor, v.orgSlug, parseForm(createScimTokenBody, req).name);
      // The secret travels sealed in the flash (flash.ts) and is shown on the next view of the page only.
      return { newScimToken: { token: t.token, token_id: t.token_id, name: t.name } };
    },
    render('scim'),
  );
  action(
    '/admin/scim/tokens/:id/revoke',
    () => '/admin#scim',
    async (req, v, params) => {
      await d.scimTokens.revoke(v.actor, v.orgSlug, params.id);
      return { notice: 'The SCIM token was revoked: the IdP\'s next request with it is refused.' };
    },
    render('scim'),
  );
}
