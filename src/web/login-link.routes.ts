import express from 'express';
import { LRUCache } from 'lru-cache';
import type { Router } from 'express';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { hashSecret } from '../crypto/tokens.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { errorPages } from '../http/express-app.ts';
import type { Logger } from '../log/logger.ts';
import { FORM_TOKEN_FIELD, LoginFormToken } from '../http/login-form-token.ts';
import { SessionManager } from '../sso/session-store.ts';
import { LOGIN_LINK_TTL_MS } from './login-links.service.ts';
import type { LoginLinksService } from './login-links.service.ts';
import { errorPage } from './views/common.ts';
import { loginLinkPage } from './views/login-link.ts';
import { sendHtml } from '../html/html.ts';

/**
 * Binds the confirmation button to the browser that opened the link
 * (double submit): SameSite=Strict, so another site cannot make a visitor's
 * browser post someone else's link and sign them in as that person.
 */
export const LINK_COOKIE = 'trackgate.link';

/** How long an address's bad links are counted (and each counted once): as long as a link lives. */
const FAILURE_WINDOW_SECONDS = LOGIN_LINK_TTL_MS / 1000;
/** Both routes' path: its template types req.params (params.token). */
const LINK_PATH = '/login/link/:token';

export interface LoginLinkRoutesOptions {
  links: LoginLinksService;
  sessions: SessionManager;
  logger: Logger;
  secure: boolean;
}

/** GET /login/link/:token (confirmation page) and POST /login/link/:token (sign in). */
export function createLoginLinkRouter(o: LoginLinkRoutesOptions): Router {
  const router = express.Router();
  const confirmation = new LoginFormToken({ secure: o.secure, maxAgeSeconds: LOGIN_LINK_TTL_MS / 1000, cookie: { name: LINK_COOKIE, path: '/login/link', sameSite: 'strict' } });
  // Tokens are 256-bit random, so guessing is hopeless; this only keeps a scanner from hammering the table.
  const failures = new RateLimiterMemory({ points: 20, duration: FAILURE_WINDOW_SECONDS });
  // Each bad link counts once per address and window: a person (or a link preview) reloading one used or
  // expired link must not lock everyone behind the same NAT out of their own links; a scanner tries many.
  const counted = new LRUCache<string, true>({ max: 10_000, ttl: FAILURE_WINDOW_SECONDS * 1000 });

  const htmlErrors = errorPages((view) => errorPage(view));

  const limited = async (ip: string): Promise<void> => {
    const r = await failures.get(ip);
    if (r && r.consumedPoints >= 20) throw errors.tooManyRequests('too many invalid login links from this address; wait a few minutes', r.msBeforeNext / 1000);
  };
  const failed = async (ip: string, token: string, err: unknown): Promise<void> => {
    if (!(err instanceof AppError) || !err.isClientError) return;
    const pair = `${ip} ${hashSecret(token, 'base64url')}`;
    if (counted.get(pair) !== undefined) return;
    counted.set(pair, true);
    await failures.consume(ip).catch((res: unknown) => {
      if (!(res instanceof RateLimiterRes)) throw res;
    });
  };

  // The path as the type argument: left to infer, Express's types take req.params from htmlErrors (any name, maybe undefined), not from the path.
  router.get<typeof LINK_PATH>(LINK_PATH, htmlErrors, async (req, res, next) => {
    const ip = res.locals.clientIp;
    try {
      await limited(ip);
      const target = await o.links.inspect(req.params.token).catch(async (err: unknown) => {
        await failed(ip, req.params.token, err);
        throw err;
      });
      const formToken = confirmation.issue(req, res);
      sendHtml(
        res,
        200,
        loginLinkPage({ action: `/login/link/${req.params.token}`, formToken, displayName: target.user.display_name, email: target.user.email, org: target.org.slug, expiresAt: target.link.expires_at }),
      );
    } catch (err) {
      next(err);
    }
  });

  router.post<typeof LINK_PATH>(LINK_PATH, htmlErrors, o.sessions.middleware(), async (req, res, next) => {
    const ip = res.locals.clientIp;
    const requestId = res.locals.requestId;
    try {
      await limited(ip);
      if (!confirmation.verify(req, (req.body as Record<string, unknown> | undefined)?.[FORM_TOKEN_FIELD])) {
        throw errors.forbidden('open the login link in this browser and press its Sign in button; the link was not used', 'link_confirmation_failed');
      }
      const countFailure = async (err: unknown) => {
        await failed(ip, req.params.token, err);
        throw err;
      };
      // The session first, then the link: with the session store down (Redis) the answer is a 503 and the
      // link is still unused, where using it first spent it on a sign-in that could not happen.
      const intended = await o.links.check(req.params.token, { ip, requestId }).catch(countFailure);
      // Exactly as an SSO login: a new session id and CSRF token, whatever the browser had before.
      await SessionManager.establish(req, { userId: intended.user.id, orgId: intended.org.id, method: 'link', connectionId: null });
      let target;
      try {
        target = await o.links.consume(req.params.token, { ip, requestId });
      } catch (err) {
        // Used meanwhile (another tab), or the account changed: the session just made must not outlive the refusal.
        await SessionManager.end(req).catch(() => {});
        return await countFailure(err);
      }
      confirmation.clear(res);
      o.logger.info({ request_id: requestId, user: target.user.username, org: target.org.slug }, 'login link: signed in');
      res.redirect(303, '/settings');
    } catch (err) {
      next(err);
    }
  });

  return router;
}
