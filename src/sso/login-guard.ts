import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { Response } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { equalSecrets } from '../crypto/equal-secrets.ts';
import type { RedisKeyspace } from '../redis/keyspace.ts';

/**
 * Who may start an SSO login, and how often.
 *
 * Login CSRF: a page on another site must not be able to send a browser
 * through `GET /login?org=<theirs>` and have it come back signed in to an
 * account of the attacker's IdP. A login therefore starts at once only from
 * a navigation the browser says came from trackgate's own pages; any other
 * start gets a "Continue to sign in to …" page whose button posts the login
 * form, and that form carries the browser's form token (double submit, the
 * same pattern as the login link's confirmation: a cookie only this origin
 * can read, echoed in a hidden field another site cannot know).
 */

/** Double-submit cookie of the login forms (the email form and the "Continue" page). */
export const LOGIN_FORM_COOKIE = 'trackgate.loginform';

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{32}$/;

/**
 * Whether a GET /login that would start a login comes from trackgate's own
 * pages. `Sec-Fetch-Site: same-origin` only (`none` is a typed URL, a
 * bookmark, or a link opened from a mail or chat app, which an attacker can
 * send too; `same-site` is a sibling subdomain); without Sec-Fetch-Site (a
 * browser older than 2023, or not a browser) a Referer of this origin. A
 * request with neither is not trusted: an old browser on an attacker's page
 * with `referrerpolicy="no-referrer"` sends neither, and a person behind it
 * loses only one click on the Continue page.
 */
export function isOwnNavigation(req: IncomingMessage, publicOrigin: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== '') return site === 'same-origin';
  const referer = req.headers.referer;
  if (typeof referer !== 'string' || referer === '') return false;
  try {
    return new URL(referer).origin === publicOrigin;
  } catch {
    return false;
  }
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
    const token = randomBytes(24).toString('base64url');
    this.set(res, token, this.options.maxAgeSeconds);
    return token;
  }

  /** The posted form carries this browser's token. */
  verify(req: IncomingMessage, given: unknown): boolean {
    const have = this.cookieOf(req);
    return Boolean(have && typeof given === 'string' && given !== '' && equalSecrets(have, given));
  }

  /** Forgets the browser's token (after the form did what it was for). */
  clear(res: Response): void {
    this.set(res, '', 0);
  }
}

/** Login starts per client address: each stores a login attempt, so they are counted (Redis when configured, shared by every instance). */
export class LoginStartLimiter {
  private readonly limiter: RateLimiterAbstract;

  constructor(options: { points: number; durationSeconds: number; redis?: Redis | null | undefined; keyspace: RedisKeyspace }) {
    const limits = { points: options.points, duration: options.durationSeconds };
    this.limiter = options.redis
      ? new RateLimiterRedis({ storeClient: options.redis, keyPrefix: options.keyspace.loginStarts, ...limits, insuranceLimiter: new RateLimiterMemory(limits) })
      : new RateLimiterMemory(limits);
  }

  /** Counts one start; the seconds to wait when the address has none left, else null. */
  async take(ip: string): Promise<number | null> {
    try {
      await this.limiter.consume(ip);
      return null;
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    }
  }
}
