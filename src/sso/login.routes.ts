import { fileURLToPath } from 'node:url';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import express from 'express';
import type { Request, Response, Router } from 'express';
import { AppError, errors } from '../errors/app-error.ts';
import { errorPages, sendErrorPage } from '../http/express-app.ts';
import type { Logger } from '../log/logger.ts';
import type { LoginStartLimiter } from './login-guard.ts';
import { OidcLoginError } from './oidc/problems.ts';
import { continuePage, errorPage, fragmentPage, loginPage } from './pages.ts';
import { sendHtml } from '../html/html.ts';
import { SESSION_COOKIE, SessionManager } from './session-store.ts';
import { logOut } from './passport/authenticator.ts';
import type { Authenticator, SignIn } from './passport/authenticator.ts';
import type { ConnectionStrategies } from './passport/connection-strategies.ts';
import { strategyConnection } from './passport/connection-strategies.ts';
import { connectionKind } from './saml/settings.ts';
import type { OidcAuthenticateOptions, SsoSignInInfo } from './passport/oidc-strategy.ts';
import { SsoLoginService } from './sso-login.service.ts';
import type { Connection } from './sso.service.ts';
import type { SamlLogins } from './saml/saml-login.ts';
import { loginPath, safeReturnTo } from '../http/return-to.ts';
import { CSRF_FIELD, isSameOrigin } from '../http/csrf.ts';
import { contentSecurityPolicy } from '../http/csp.ts';
import { prefersJson } from '../http/browser.ts';
import { FORM_TOKEN_FIELD, LoginFormToken } from '../http/login-form-token.ts';

/**
 * Binds login attempts to the browser that started them. SameSite=None: it
 * must survive the IdP's cross-site form_post. Path=/login so that /login
 * sees it too and a second tab reuses it (both tabs' transactions stay valid).
 */
export const BINDING_COOKIE = 'trackgate.login';

export interface LoginRoutesOptions {
  login: SsoLoginService;
  /** A SAML connection's sign-in starts there (an AuthnRequest), not at the OIDC login service. */
  saml: SamlLogins;
  sessions: SessionManager;
  /** The instance's Passport and the strategy of each connection: every login starts and finishes through them. */
  authenticator: Authenticator;
  strategies: ConnectionStrategies;
  logger: Logger;
  transactionTtlSeconds: number;
  /** form-action sources the login page may submit (then redirect) to: the IdPs. */
  allowHttpIssuers: boolean;
  secure: boolean;
  /** scheme://host[:port] of TRACKGATE_PUBLIC_URL: what "from trackgate's own pages" means. */
  publicOrigin: string;
  /** Login starts per client address. */
  startLimiter: LoginStartLimiter;
  /** Names for the pages: an organization's slug, and who a live session belongs to. */
  names: {
    orgSlug(orgId: string): Promise<string | null>;
    user(orgId: string, userId: string): Promise<{ username: string; org: string } | null>;
  };
}

/** How a strategy's run ended, for the route to answer (or not: `answered`). */
type Outcome = { signIn: SignIn; info: SsoSignInInfo } | { refused: OidcLoginError } | { answered: true };

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

/** The login-binding cookie: the browser that started a login (or a test login, from /admin) is the one that finishes it. */
export function setBindingCookie(res: Response, value: string, maxAgeSeconds: number): void {
  res.append('Set-Cookie', serializeCookie(BINDING_COOKIE, value, { httpOnly: true, secure: true, sameSite: 'none', path: '/login', maxAge: maxAgeSeconds }));
}

/** GET /login, GET|POST /login/callback, POST /logout, and the pages' static files. */
export function createLoginRouter(o: LoginRoutesOptions): Router {
  const router = express.Router();
  const sessionMw = o.sessions.middleware();
  const staticDir = fileURLToPath(new URL('./static/', import.meta.url));
  router.use('/static/sso', express.static(staticDir, { index: false, fallthrough: false, maxAge: 0 }));

  const htmlErrors = errorPages((view) =>
    errorPage({ title: 'Sign-in failed', message: view.status >= 500 ? 'Something went wrong on our side. Try again in a moment.' : view.message, code: view.code, requestId: view.requestId }),
  );

  const bindingOf = (req: Request): string | undefined => {
    const header = req.headers.cookie;
    return header ? parseCookies(header)[BINDING_COOKIE] : undefined;
  };

  const setBinding = (res: Response, value: string) => setBindingCookie(res, value, o.transactionTtlSeconds);

  // The email form submits to /login, which redirects to the IdP: browsers apply form-action to that
  // redirect, so the IdPs' origins must be allowed on these pages.
  const csp = contentSecurityPolicy(["'self'", 'https:', ...(o.allowHttpIssuers ? ['http:'] : [])]);
  const formToken = new LoginFormToken({ secure: o.secure, maxAgeSeconds: o.transactionTtlSeconds });

  /** The connection a login form or link names, or the login page saying why there is none. */
  const connectionFor = async (res: Response, input: { email?: string | undefined; org?: string | undefined }, returnTo: string, token: () => string) => {
    try {
      return await o.login.findConnection(input);
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      o.logger.info({ request_id: res.locals.requestId, code: err.code, details: err.details }, 'sso: login could not start');
      // The login form again, with the problem: its status is the code's kind's (src/http/errors.ts).
      sendErrorPage(res, err, (view) => loginPage({ returnTo, email: input.email, error: view.message, formToken: token() }));
      return null;
    }
  };

  /**
   * Runs the connection's Passport strategy (made again if the connection changed since) with a custom
   * callback, so that the pages stay this router's: the sign-in (success), the refusal (fail, with its
   * OidcLoginError), or `answered` when the strategy redirected (to the IdP, or to a test login's report),
   * which Passport answers itself without calling back. Anything else (a store down) rejects.
   */
  const authenticate = (req: Request, res: Response, connection: Connection, options: OidcAuthenticateOptions) =>
    new Promise<Outcome>((resolve, reject) => {
      const name = o.strategies.use(strategyConnection(connection));
      const answered = () => resolve({ answered: true });
      res.once('finish', answered).once('close', answered);
      const middleware = o.authenticator.authenticate(name, options as never, (err: unknown, user: SignIn | false, info: unknown) => {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what the strategy's services failed with (an AppError, a store's error)
        if (err) return reject(err);
        if (user !== false) return resolve({ signIn: user, info: info as SsoSignInInfo });
        if (info instanceof OidcLoginError) return resolve({ refused: info });
        reject(new Error('the sign-in strategy failed without saying why'));
      }) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
      // next(): Passport's own errors (an unknown strategy name); the strategy never pass()es.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what Passport failed with
      middleware(req, res, (err?: unknown) => reject(err ?? new Error('the sign-in strategy passed')));
    });

  /** A SAML sign-in's start: the AuthnRequest's URL (HTTP-Redirect binding), the binding cookie, the redirect. */
  const startSaml = async (req: Request, res: Response, connection: Connection, returnTo: string, binding: string, email: string | undefined) => {
    try {
      const url = await o.saml.startUrl(connection, returnTo, binding);
      setBinding(res, binding);
      return res.redirect(303, url);
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      o.logger.info({ request_id: res.locals.requestId, code: err.code, details: err.details }, 'sso: login could not start');
      return sendErrorPage(res, err, (view) => loginPage({ returnTo, email, error: view.message, formToken: formToken.issue(req, res) }));
    }
  };

  /** Stores the login attempt (counted per client address) and sends the browser to the IdP. */
  const startLogin = async (req: Request, res: Response, connection: Connection, returnTo: string, email: string | undefined) => {
    const wait = await o.startLimiter.take(res.locals.clientIp);
    if (wait !== null) {
      o.logger.warn({ request_id: res.locals.requestId, retry_after: wait }, 'sso: too many login starts from one address');
      const tooMany = new AppError('too_many_login_attempts', `Too many sign-ins were started from your network address. Wait ${wait} seconds, then sign in again.`, { retryAfterSeconds: wait });
      return sendErrorPage(res, tooMany, (view) => errorPage({ title: 'Too many sign-in attempts', message: view.message, code: view.code, requestId: view.requestId }));
    }
    const binding = bindingOf(req) ?? SsoLoginService.newBinding();
    // A SAML connection starts with an AuthnRequest (its transaction stored through node-saml's cacheProvider).
    if (connection.kind === 'saml') return startSaml(req, res, connection, returnTo, binding, email);
    // The connection's strategy stores the login, then redirects to the IdP with the binding cookie set.
    const outcome = await authenticate(req, res, connection, { start: { returnTo, binding, loginHint: email, onStarted: () => setBinding(res, binding) } });
    if (!('refused' in outcome)) return;
    const err = outcome.refused;
    o.logger.info({ request_id: res.locals.requestId, code: err.code, details: err.details }, 'sso: login could not start');
    return sendErrorPage(res, err, (view) => loginPage({ returnTo, email, error: view.message, formToken: formToken.issue(req, res) }));
  };

  router.get('/login', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      res.setHeader('Content-Security-Policy', csp);
      // The pages carry the browser's form token.
      res.setHeader('Cache-Control', 'no-store');
      const q = req.query as Record<string, unknown>;
      const returnTo = safeReturnTo(q.return_to);
      const email = typeof q.email === 'string' ? q.email : undefined;
      const org = typeof q.org === 'string' ? q.org : undefined;
      const s = req.user;
      const target = email !== undefined ? { email } : org !== undefined ? { org } : undefined;
      if (target === undefined) {
        if (s && q.prompt !== 'login') return res.redirect(303, returnTo);
        return sendHtml(res, 200, loginPage({ returnTo, formToken: formToken.issue(req, res), notice: q.logged_out === '1' ? 'You are signed out.' : undefined }));
      }
      const connection = await connectionFor(res, target, returnTo, () => formToken.issue(req, res));
      if (!connection) return;
      // Login CSRF (isSameOrigin's navigation rule, src/http/csrf.ts): a link from anywhere but trackgate's own pages, or any link while
      // someone is signed in here, starts nothing; the person confirms on a page that says what happens.
      if (!s && isSameOrigin(req, o.publicOrigin, { navigation: true })) return await startLogin(req, res, connection, returnTo, email);
      const signedInAs = s ? await o.names.user(s.orgId, s.userId) : null;
      return sendHtml(
        res,
        200,
        continuePage({
          org: (await o.names.orgSlug(connection.row.org_id)) ?? 'your organization',
          target,
          returnTo,
          formToken: formToken.issue(req, res),
          signedInAs: signedInAs ?? undefined,
        }),
      );
    } catch (err) {
      next(err);
    }
  });

  // The login forms (the email form, the Continue page): posted from trackgate's pages with the browser's form token.
  router.post('/login', htmlErrors, sessionMw, async (req, res, next) => {
    try {
      res.setHeader('Content-Security-Policy', csp);
      res.setHeader('Cache-Control', 'no-store');
      const body = bodyParams(req);
      const returnTo = safeReturnTo(body.get('return_to') ?? undefined);
      if (!formToken.verify(req, body.get(FORM_TOKEN_FIELD))) {
        const refused = errors.forbidden('this sign-in form did not come from a trackgate page open in this browser; nothing was started. Sign in from the sign-in page.', 'csrf_failed');
        return sendErrorPage(res, refused, (view) => errorPage({ title: 'Sign-in not started', message: view.message, code: view.code, requestId: view.requestId, retry: loginPath(returnTo) }));
      }
      const email = body.get('email') ?? undefined;
      const org = email === undefined ? (body.get('org') ?? undefined) : undefined;
      const connection = await connectionFor(res, { email, org }, returnTo, () => formToken.issue(req, res));
      if (!connection) return;
      return await startLogin(req, res, connection, returnTo, email);
    } catch (err) {
      next(err);
    }
  });

  const refuse = (res: Response, err: OidcLoginError) => {
    o.logger.warn({ request_id: res.locals.requestId, code: err.code, details: err.details, cause: err.cause instanceof Error ? err.cause.message : undefined }, `sso: login failed: ${err.message}`);
    sendErrorPage(res, err, (view) => errorPage({ title: 'Sign-in failed', message: view.message, code: view.code, requestId: view.requestId }));
  };

  /**
   * One callback URL for every connection: the answer's state names its login transaction, which is taken
   * (once: it is single-use) and names the connection; that connection's strategy finishes the login with it.
   */
  const finish = async (req: Request, res: Response, params: URLSearchParams) => {
    const ctx = { ip: res.locals.clientIp, requestId: res.locals.requestId };
    let outcome: Outcome;
    try {
      const transaction = await o.login.takeTransaction(params, bindingOf(req));
      const { connection, org } = await o.login.connectionOf(transaction).catch((err: unknown) => {
        // Deleted or disabled: this instance forgets the connection's strategy (made again if it comes back).
        if (err instanceof OidcLoginError) o.strategies.drop(transaction.connection_id);
        throw err;
      });
      if (connectionKind(connection.row) !== 'oidc') throw new OidcLoginError('unexpected_response', 'this sign-in answer came to the OpenID Connect callback, but its connection is not an OpenID Connect one');
      outcome = await authenticate(req, res, connection, { callback: { transaction, org, params, ctx } });
    } catch (err) {
      if (!(err instanceof OidcLoginError)) throw err;
      return refuse(res, err);
    }
    // A test login (an admin's, on /admin): the strategy redirected to its report, sealed for the session that started it; nobody signed in.
    if ('answered' in outcome) return;
    if ('refused' in outcome) return refuse(res, outcome.refused);
    // A fresh session id at every login (Passport's req.login): whatever session the browser had (or was given) is dropped.
    await SessionManager.establish(req, outcome.signIn);
    o.logger.info({ request_id: ctx.requestId, user: outcome.info.username, org: outcome.info.orgSlug, connection_id: outcome.signIn.connectionId }, 'sso: login');
    // Checked again on the way out: a transaction stored by an older version may hold any path.
    res.redirect(303, safeReturnTo(outcome.info.returnTo));
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
      const s = req.user;
      // The CSRF token is checked against the session as read() validates it (the one source);
      // a session that read() no longer accepts (timed out) is ended without asking for it.
      if (s && (await o.sessions.read(req))) {
        const token = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
        if (!o.sessions.verifyCsrf(req, token)) {
          const refused = errors.forbidden("the sign-out request did not carry this session's CSRF token", 'csrf_failed');
          return sendErrorPage(res, refused, (view) => errorPage({ title: 'Sign-out refused', message: view.message, code: view.code, requestId: view.requestId, retry: '/settings' }));
        }
      }
      // Passport's logout: the sign-in cleared and the session id regenerated, which destroys the old one in the
      // shared store, so the session ends on every instance.
      if (s) await logOut(req);
      res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: o.secure });
      if (prefersJson(req)) return res.status(204).end();
      res.redirect(303, '/login?logged_out=1');
    } catch (err) {
      next(err);
    }
  });

  return router;
}
