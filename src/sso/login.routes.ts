import { fileURLToPath } from 'node:url';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import express from 'express';
import type { Request, Response, Router } from 'express';
import type { SessionData } from 'express-session';
import type { Principal } from '../auth/principal.ts';
import type { AppError } from '../http/errors.ts';
import type { Logger } from '../log/logger.ts';
import { OidcLoginError } from './oidc/problems.ts';
import { errorPage, fragmentPage, loginPage } from './pages.ts';
import { SESSION_COOKIE, SessionManager } from './session-store.ts';
import { LoginRefused, safeReturnTo, SsoLoginService } from './sso-login.service.ts';

/**
 * Binds login attempts to the browser that started them. SameSite=None: it
 * must survive the IdP's cross-site form_post. Path=/login so that /login
 * sees it too and a second tab reuses it (both tabs' transactions stay valid).
 */
export const BINDING_COOKIE = 'trackgate.login';

export interface LoginRoutesOptions {
  login: SsoLoginService;
  sessions: SessionManager;
  logger: Logger;
  transactionTtlSeconds: number;
  /** form-action sources the login page may submit (then redirect) to: the IdPs. */
  allowHttpIssuers: boolean;
  secure: boolean;
}

function loginPageCsp(allowHttp: boolean): string {
  // The email form submits to /login, which redirects to the IdP: browsers apply
  // form-action to that redirect, so the IdPs' origins must be allowed here.
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `form-action 'self' https:${allowHttp ? ' http:' : ''}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

function sendHtml(res: Response, status: number, html: string): void {
  res.status(status).type('html').send(html);
}

function bodyParams(req: Request): URLSearchParams {
  const out = new URLSearchParams();
  const body = (req.body ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out.set(k, v);
  return out;
}

function queryParams(req: Request): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') out.set(k, v);
  return out;
}

/** GET /login, GET|POST /login/callback, POST /logout, and the pages' static files. */
export function createLoginRouter(o: LoginRoutesOptions): Router {
  const router = express.Router();
  const sessionMw = o.sessions.middleware();
  const staticDir = fileURLToPath(new URL('./static/', import.meta.url));
  router.use('/static/sso', express.static(staticDir, { index: false, fallthrough: false, maxAge: 0 }));

  const htmlErrors = (_req: Request, res: Response, next: () => void) => {
    res.locals.renderError = (e: AppError, rid: string) => {
      sendHtml(res, e.status, errorPage({ title: 'Sign-in failed', message: e.status >= 500 ? 'Something went wrong on our side. Try again in a moment.' : e.message, code: e.code, requestId: rid }));
      return true;
    };
    next();
  };

  const bindingOf = (req: Request): string | undefined => {
    const header = req.headers.cookie;
    return header ? parseCookies(header)[BINDING_COOKIE] : undefined;
  };

  const setBinding = (res: Response, value: string) => {
    res.append(
      'Set-Cookie',
      serializeCookie(BINDING_COOKIE, value, { httpOnly: true, secure: true, sameSite: 'none', path: '/login', maxAge: o.transactionTtlSeconds }),
    );
  };

  router.get('/login', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      res.setHeader('Content-Security-Policy', loginPageCsp(o.allowHttpIssuers));
      const q = req.query as Record<string, unknown>;
      const returnTo = safeReturnTo(q.return_to);
      const email = typeof q.email === 'string' ? q.email : undefined;
      const org = typeof q.org === 'string' ? q.org : undefined;
      if (email === undefined && org === undefined) {
        const s = req.session as Partial<SessionData>;
        if (s.userId && q.prompt !== 'login') return res.redirect(303, returnTo);
        return sendHtml(res, 200, loginPage({ returnTo, notice: q.logged_out === '1' ? 'You are signed out.' : undefined }));
      }
      try {
        const connection = await o.login.findConnection(email !== undefined ? { email } : { org });
        const binding = bindingOf(req) ?? SsoLoginService.newBinding();
        const started = await o.login.start(connection, returnTo, binding, email);
        setBinding(res, binding);
        return res.redirect(303, started.url);
      } catch (err) {
        if (!(err instanceof OidcLoginError)) throw err;
        o.logger.info({ request_id: res.locals.requestId, code: err.code, details: err.details }, 'sso: login could not start');
        return sendHtml(res, err instanceof LoginRefused ? 404 : 400, loginPage({ returnTo, email, error: err.message }));
      }
    } catch (err) {
      next(err);
    }
  });

  const finish = async (req: Request, res: Response, params: URLSearchParams) => {
    const ctx = { ip: res.locals.clientIp as string, requestId: res.locals.requestId as string };
    try {
      const result = await o.login.finish(params, bindingOf(req), ctx);
      // A fresh session id at every login: whatever session the browser had (or was given) is dropped.
      await SessionManager.establish(req, { userId: result.user.id, orgId: result.org.id, method: 'sso', connectionId: result.connectionId });
      o.logger.info({ request_id: ctx.requestId, user: result.user.username, org: result.org.slug, connection_id: result.connectionId }, 'sso: login');
      // Checked again on the way out: a transaction stored by an older version may hold any path.
      res.redirect(303, safeReturnTo(result.returnTo));
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      o.logger.warn({ request_id: ctx.requestId, code: err.code, details: err.details, cause: err.cause instanceof Error ? err.cause.message : undefined }, `sso: login failed: ${err.message}`);
      sendHtml(res, err instanceof LoginRefused ? 403 : 400, errorPage({ title: 'Sign-in failed', message: err.message, code: err.code, requestId: ctx.requestId }));
    }
  };

  router.get('/login/callback', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      const params = queryParams(req);
      if (params.has('state') || params.has('code') || params.has('error')) return await finish(req, res, params);
      sendHtml(res, 200, fragmentPage());
    } catch (err) {
      next(err);
    }
  });

  router.post('/login/callback', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      await finish(req, res, bodyParams(req));
    } catch (err) {
      next(err);
    }
  });

  router.post('/logout', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      const wantsJson = (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');
      const s = req.session as Partial<SessionData>;
      if (s.userId) {
        const token = (req.body as Record<string, unknown> | undefined)?.csrf_token;
        if (!o.sessions.verifyCsrf(req, token)) {
          return sendHtml(res, 403, errorPage({ title: 'Sign-out refused', message: 'the sign-out request did not carry this session\'s CSRF token', code: 'csrf_failed', requestId: res.locals.requestId as string, retry: '/settings' }));
        }
        await new Promise<void>((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve())));
      }
      res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: o.secure });
      if (wantsJson) return res.status(204).end();
      res.redirect(303, '/login?logged_out=1');
    } catch (err) {
      next(err);
    }
  });

  return router;
}

/** The session's principal for the authenticator (narrow hook: src/auth/authenticator.ts useSessions). */
export type SessionPrincipalLoader = (orgId: string, userId: string) => Promise<Principal | null>;
