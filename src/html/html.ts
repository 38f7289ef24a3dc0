/**
 * HTML for every page trackgate serves (the web pages, the sign-in pages):
 * one layout, one stylesheet (/static/web/web.css). Every value interpolated with the `html` tag is
 * escaped unless it is itself Html (made by `html` or, for a constant, `raw`):
 * escaping is the default, so a forgotten escape cannot happen. No inline
 * script or style anywhere — the CSP allows /static/ files only.
 */
import type { Response } from 'express';

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  // The pattern matches only ESCAPES' keys.
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c as keyof typeof ESCAPES]);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- templates interpolate strings, numbers and booleans
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  // A tagged template has one more string than values: strings[i + 1] is always there.
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Trusted constant markup only; never pass input through here. */
export function raw(s: string): Html {
  return new Html(s);
}

/** Sends a rendered page: every HTML answer goes out through here. */
export function sendHtml(res: Response, status: number, body: string): void {
  res.status(status).type('html').send(body);
}

export type Theme = 'light' | 'dark' | 'system';

const DEFAULT_SCRIPTS = ['/static/web/web.js'];

export interface LayoutInput {
  title: string;
  body: Html;
  /** Light, dark, or the device's preference: a class on <html> that the stylesheet keys on. */
  theme: Theme;
  /**
   * The signed-in person, for the header (absent on pages shown before sign-in). `csrf`: the sign-out
   * form's hidden CSRF field, rendered by src/http/csrf.ts (csrfField), which owns its name.
   */
  user?: { username: string; displayName: string; csrf: Html; isAdmin: boolean } | undefined;
  /** Which header link is the current page. */
  current?: 'settings' | 'teams' | 'admin' | undefined;
  /** The page's static scripts (paths under /static/); by default the pages' conveniences, web.js. The sign-in pages need none but their own. */
  scripts?: string[] | undefined;
}

export function layout(input: LayoutInput): string {
  const u = input.user;
  const nav = u
    ? html`<nav aria-label="Main">
<a href="/settings"${input.current === 'settings' ? raw(' aria-current="page"') : ''}>Settings</a>
<a href="/teams"${input.current === 'teams' ? raw(' aria-current="page"') : ''}>Teams</a>
${u.isAdmin ? html`<a href="/admin"${input.current === 'admin' ? raw(' aria-current="page"') : ''}>Admin</a>` : ''}
</nav>
<div class="who">
<span title="${u.username}">${u.displayName}</span>
<form method="post" action="/logout" class="inline">${u.csrf}<button type="submit" class="link">Sign out</button></form>
</div>`
    : '';
  return `<!DOCTYPE html>
<html lang="en" class="theme-${escapeHtml(input.theme)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="${input.theme === 'system' ? 'light dark' : escapeHtml(input.theme)}">
<title>${escapeHtml(input.title)} · trackgate</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="/static/web/web.css">
${(input.scripts ?? DEFAULT_SCRIPTS).map((src) => `<script src="${escapeHtml(src)}" defer></script>\n`).join('')}</head>
<body>
<header class="top">
<a class="brand" href="/settings">trackgate</a>
${render(nav)}
</header>
<main>
${input.body.value}
</main>
</body>
</html>
`;
}

/**
 * A date as people read it, in UTC; the machine-readable value stays in
 * datetime. Tables say "(UTC)" in their header and pass utc: false.
 */
export function when(iso: string | null | undefined, empty = '—', options: { utc?: boolean } = {}): Html {
  if (!iso) return html`<span class="muted">${empty}</span>`;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return html`${iso}`;
  const text = `${d.toISOString().slice(0, 16).replace('T', ' ')}${options.utc === false ? '' : ' UTC'}`;
  return html`<time datetime="${iso}" title="${iso}">${text}</time>`;
}

/** A date in a table whose header says (UTC). */
export function cell(iso: string | null | undefined, empty = '—'): Html {
  return when(iso, empty, { utc: false });
}

export function options<T extends string>(values: readonly T[], selected: string | undefined, labels: Partial<Record<T, string>> = {}): Html {
  return html`${values.map((v) => html`<option value="${v}"${v === selected ? raw(' selected') : ''}>${labels[v] ?? v}</option>`)}`;
}

export interface Notices {
  notice?: string | undefined;
  error?: string | undefined;
  /** Field-by-field problems (SSO discovery). */
  problems?: Array<{ field: string; code?: string; message: string }> | undefined;
}

export function notices(n: Notices): Html {
  return html`${n.notice ? html`<p class="notice" role="status">${n.notice}</p>` : ''}${
    n.error || n.problems?.length
      ? html`<div class="alert" role="alert">${n.error ? html`<p>${n.error}</p>` : ''}${
          n.problems?.length ? html`<ul class="problems">${n.problems.map((p) => html`<li><strong>${p.field}</strong>: ${p.message}${p.code ? html` <code>${p.code}</code>` : ''}</li>`)}</ul>` : ''
        }</div>`
      : ''
  }`;
}
