import type { Actor } from '../../auth/actor.ts';
import type { OrgRole, TeamRole } from '../../auth/principal.ts';
import { html, layout, raw } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { Html, Notices, Theme } from '../../html/html.ts';

/** Who is looking at a page, as every page needs it. */
export interface Viewer {
  actor: Actor;
  csrf: string;
  username: string;
  email: string;
  displayName: string;
  orgSlug: string;
  role: OrgRole;
  instanceAdmin: boolean;
  theme: Theme;
  teams: Array<{ name: string; role: TeamRole }>;
}

export function page(viewer: Viewer, title: string, current: 'settings' | 'teams' | 'admin' | undefined, body: Html): string {
  return layout({
    title,
    body,
    theme: viewer.theme,
    current,
    user: { username: viewer.username, displayName: viewer.displayName, csrf: csrfField(viewer.csrf), isAdmin: viewer.role === 'admin' },
  });
}

/**
 * The error page of the web pages. 5xx say nothing about the cause (it is in
 * the log under the request ID); 4xx say what is wrong.
 */
export function errorPage(input: { status: number; code: string; message: string; requestId: string; theme?: Theme | undefined; viewer?: Viewer | undefined }): string {
  const title = input.status === 404 ? 'Not found' : input.status === 403 ? 'Not allowed' : input.status >= 500 ? 'Something went wrong' : input.status === 410 ? 'Link no longer valid' : 'Request refused';
  const message = input.status >= 500 ? 'Something went wrong on our side. Try again in a moment; if it keeps happening, give the request ID below to your administrator.' : input.message;
  const body = html`<section class="card narrow">
<h1>${title}</h1>
<p class="alert" role="alert">${message}</p>
<p class="muted">Error <code>${input.code}</code> · HTTP ${input.status} · request <code>${input.requestId}</code></p>
<p><a href="/settings">Back to your settings</a></p>
</section>`;
  if (input.viewer) return page(input.viewer, title, undefined, body);
  return layout({ title, body, theme: input.theme ?? 'system' });
}

/** A one-button POST form (revoke, delete, remove...). `confirm` asks first, through /static/web/web.js. */
export function buttonForm(input: { action: string; csrf: string; label: string; danger?: boolean; confirm?: string; fields?: Record<string, string> }): Html {
  return html`<form method="post" action="${input.action}" class="inline"${input.confirm ? html` data-confirm="${input.confirm}"` : ''}>${csrfField(input.csrf)}${Object.entries(input.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit"${input.danger ? raw(' class="danger"') : raw(' class="secondary"')}>${input.label}</button></form>`;
}

/**
 * A refused form's problem with one of its fields, to show beside that field (`id`: for the field's
 * aria-describedby), and what is left to show above the form: the other problems, and the message unless
 * the field's problem was all there was to say.
 */
export function fieldProblem(n: Notices | undefined, field: string, id: string): { problem: Html | null; rest: Notices } {
  const problems = n?.problems ?? [];
  const mine = problems.filter((p) => p.field === field);
  const others = problems.filter((p) => p.field !== field);
  if (mine.length === 0) return { problem: null, rest: { error: n?.error, problems: others } };
  return {
    problem: html`<span class="field-error" id="${id}">${mine.map((p) => p.message).join('; ')}</span>`,
    rest: others.length ? { error: n?.error, problems: others } : {},
  };
}
