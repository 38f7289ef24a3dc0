import type { IncomingMessage } from 'node:http';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { Response } from 'express';
import { equalSecrets } from '../crypto/equal-secrets.ts';
import { newToken, tokenShape } from '../crypto/tokens.ts';
import { html } from '../html/html.ts';
import type { Html } from '../html/html.ts';

/**
 * CSRF for forms shown before any session exists (src/http/csrf.ts has the
 * signed-in forms' rule): the login forms (the email form and the "Continue"
 * page, src/sso/login.routes.ts) and the login link's confirmation
 * (src/web/login-link.routes.ts). Double submit: a random cookie only this
 * origin can read, echoed in a hidden field another site cannot know.
 */

/** Double-submit cookie of the login forms (the email form and the "Continue" page). */
export const LOGIN_FORM_COOKIE = 'trackgate.loginform';

/** The form field that carries the token, in every form that uses one (checked by LoginFormToken.verify). */
export const FORM_TOKEN_FIELD = 'form_token';

/** 192 random bits. */
const TOKEN_BYTES = 24;
const TOKEN_SHAPE = tokenShape(TOKEN_BYTES);

/** The hidden field that carries a form's token. */
export function formTokenField(token: string): Html {
  return html`<input type="hidden" name="${FORM_TOKEN_FIELD}" value="${token}">`;
}

/** Where a form token's cookie lives. The login forms' by default; the login link's confirmation has its own. */
export interface FormTokenCookie {
  name: string;
  path: string;
  sameSite: 'lax' | 'strict';
}

/**
 * The house's one double-submit token for forms shown to people who are not
 * signed in yet (the login forms, the login link's confirmation): a random
 * cookie only this origin can read, echoed in a hidden field another site
 * cannot know. Signed-in forms use the session's CSRF token instead.
 */
export class LoginFormToken {
  private readonly cookie: FormTokenCookie;

  constructor(private readonly options: { secure: boolean; maxAgeSeconds: number; cookie?: FormTokenCookie }) {
    this.cookie = options.cookie ?? { name: LOGIN_FORM_COOKIE, path: '/login', sameSite: 'lax' };
  }

  private cookieOf(req: IncomingMessage): string | undefined {
    const header = req.headers.cookie;
    const v = header ? parseCookies(header)[this.cookie.name] : undefined;
    return v && TOKEN_SHAPE.test(v) ? v : undefined;
  }

  private set(res: Response, value: string, maxAge: number): void {
    res.append('Set-Cookie', serializeCookie(this.cookie.name, value, { httpOnly: true, secure: this.options.secure, sameSite: this.cookie.sameSite, path: this.cookie.path, maxAge }));
  }

  /**
   * The token for a form about to be rendered: the browser's own (so that
   * two tabs' forms both stay valid), else a new one set as the cookie.
   * Lax or Strict: sent with the top-level navigation that opens the page,
   * never with another site's POST.
   */
  issue(req: IncomingMessage, res: Response): string {
    const have = this.cookieOf(req);
    if (have) return have;
    const token = newToken(TOKEN_BYTES);
    this.set(res, token, this.options.maxAgeSeconds);
    return token;
  }

  /** The posted form carries this browser's token (`given`: its FORM_TOKEN_FIELD). */
  verify(req: IncomingMessage, given: unknown): boolean {
    const have = this.cookieOf(req);
    return Boolean(have && typeof given === 'string' && given !== '' && equalSecrets(have, given));
  }

  /** Forgets the browser's token (after the form did what it was for). */
  clear(res: Response): void {
    this.set(res, '', 0);
  }
}
