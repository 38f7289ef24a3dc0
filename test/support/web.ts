/**
 * Driving the web pages as a browser does: a cookie jar, forms posted with
 * the page's CSRF token, sign-in through a one-time login link.
 */
import assert from 'node:assert/strict';
import { recordKeys } from './app.ts';
import type { TestApp } from './app.ts';
import { Browser } from './idp/browser.ts';
import { LoginLinksService } from '../../src/web/login-links.service.ts';

export type Page = { status: number; headers: Headers; text: string; location: string | null; setCookies: string[] };

export function decodeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** A browser whose pages are also searched for API keys (the run's log-redaction check then looks for them). */
export class WebBrowser extends Browser {
  constructor(readonly app: TestApp) {
    super(app.url);
  }

  override async request(method: string, pathOrUrl: string, options: { form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<Page> {
    const r = await super.request(method, pathOrUrl, options);
    recordKeys(this.app.keys, r.text);
    return r;
  }

  /** The CSRF token of a page's forms. */
  static csrf(html: string): string {
    const m = /name="csrf_token" value="([^"]+)"/.exec(html);
    assert.ok(m, 'the page has a CSRF field');
    return decodeHtml(m[1]!);
  }

  /** GETs a page (200 expected) and posts a form from it with its CSRF token. */
  async submit(pagePath: string, action: string, form: Record<string, string>): Promise<Page> {
    const page = await this.get(pagePath);
    assert.equal(page.status, 200, `GET ${pagePath}: ${page.status} ${page.text.slice(0, 300)}`);
    return this.post(action, { csrf_token: WebBrowser.csrf(page.text), ...form });
  }
}

/** A one-time login link for a person, as `trackgate login-link --email` makes it; returns its path. */
export async function loginLinkPath(app: TestApp, email: string): Promise<string> {
  const links = new LoginLinksService(app.gw.core.store, app.gw.core.audit, app.url);
  const issued = await links.issueForEmail(email);
  return new URL(issued.url).pathname;
}

/** Opens a login link and presses its button: a signed-in browser. */
export async function signIn(app: TestApp, email: string): Promise<WebBrowser> {
  const b = new WebBrowser(app);
  const path = await loginLinkPath(app, email);
  const confirm = await b.get(path);
  assert.equal(confirm.status, 200, confirm.text.slice(0, 500));
  const formToken = /name="form_token" value="([^"]+)"/.exec(confirm.text)?.[1];
  assert.ok(formToken, 'the confirmation page has its button form');
  const r = await b.post(path, { form_token: formToken });
  assert.equal(r.status, 303, r.text.slice(0, 500));
  assert.equal(r.location, '/settings');
  return b;
}

/** The visible text of a page (tags dropped, entities decoded), for matching sentences. */
export function textOf(html: string): string {
  return decodeHtml(html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' '));
}
