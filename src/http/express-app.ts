import express from 'express';
import type { ErrorRequestHandler, Express, NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Principal } from '../auth/principal.ts';
import type { Logger } from '../log/logger.ts';
import { loggablePath } from '../log/loggable-path.ts';
import type { TrustedProxies } from './client-ip.ts';
import { AppError, errors, isUnavailable } from '../errors/app-error.ts';
import type { ErrorCode, ErrorKind } from '../errors/catalogue.ts';
import type { LoginProblemCode } from '../errors/login-problems.ts';
import { SAFE_METHODS } from './csrf.ts';
import type { CsrfVerifier } from './csrf.ts';
import { clientErrorOf, httpHeadersOf, httpStatusOf } from './errors.ts';
import { requestIdOf, writeErrorJson } from './raw-response.ts';
import { pathOf } from './server.ts';
import { contentSecurityPolicy } from './csp.ts';

const CSP = contentSecurityPolicy();

declare module 'express-serve-static-core' {
  /** What the Express side's middleware leaves for the handlers after it (res.locals). */
  interface Locals {
    /** Set by the first middleware (createExpressApp), for every request. */
    requestId: string;
    /** The client's address as TrustedProxies reads it; set with requestId. */
    clientIp: string;
    /** The authenticated caller, on the management API's routes (createRequireAuth). */
    principal?: Principal;
    /** The page template of routes marked by errorPages; the JSON answer without one. */
    errorPage?: ErrorPageTemplate;
  }
}
/** Authentication for the management API: API key, access token, or session cookie (+ CSRF for writes). */
export function createRequireAuth(authenticator: Authenticator, csrf: () => CsrfVerifier | null) {
  return (req: Request, res: Response, next: NextFunction): void => {
    authenticator
      .authenticate(req, res.locals.clientIp, { allowSession: true })
      .then((outcome) => {
        if (!outcome.ok) return next(outcome.anonymous ? errors.unauthenticated() : outcome.error);
        if (outcome.principal.via === 'session' && !SAFE_METHODS.has(req.method)) {
          const verifier = csrf();
          if (!verifier || !verifier.verify(req)) return next(errors.forbidden('missing or invalid CSRF token (send the X-CSRF-Token header of your session)', 'csrf_failed'));
        }
        res.locals.principal = outcome.principal;
        next();
      })
      .catch(next);
  };
}

/** What an error page shows: a page template (src/web, src/sso) turns it into HTML in its surface's look. */
export interface ErrorView {
  status: number;
  code: ErrorCode | LoginProblemCode;
  message: string;
  requestId: string;
}
export type ErrorPageTemplate = (view: ErrorView, res: Response) => string;

/** An error a page can show: an AppError, or why a sign-in did not complete (OidcLoginError, LOGIN_PROBLEMS). */
export type PageError = AppError | { readonly kind: ErrorKind; readonly code: LoginProblemCode; readonly message: string };

/**
 * Sends an error as a page: the status and headers of src/http/errors.ts (as the JSON answer would
 * have), the body from `template`. The one way a page answers an error: createErrorHandler for what a
 * route throws, and the sign-in routes for what they show in place (a sign-in problem, the login form
 * with its error).
 */
export function sendErrorPage(res: Response, err: PageError, template: ErrorPageTemplate): void {
  const status = httpStatusOf(err);
  const headers = err instanceof AppError ? httpHeadersOf(err) : undefined;
  if (headers) res.set(headers);
  res.status(status).type('html').send(template({ status, code: err.code, message: err.message, requestId: res.locals.requestId }, res));
}

/**
 * Marks the routes after it as pages: their errors are rendered by createErrorHandler as HTML with
 * `template`, with the same status, code, message and headers as the JSON answer would have.
 */
export function errorPages(template: ErrorPageTemplate): RequestHandler {
  return (_req, res, next) => {
    res.locals.errorPage = template;
    next();
  };
}

/**
 * Renders every error of the Express side in one place: a page where the route asked for one
 * (errorPages), the JSON answer of the lean handlers otherwise; 5xx bodies never carry internals.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const rid = (res.locals.requestId as string | undefined) ?? 'unknown';
    // A library's error that marks bad client input (body-parser, the router, send) is a 4xx like any AppError.
    let appErr = clientErrorOf(err, req.path);
    if (appErr === null) {
      logger.error({ err, request_id: rid, method: req.method, path: loggablePath(req.path) }, 'unhandled error');
      appErr = errors.internal();
    }
    // A dependency that is down is expected to happen and is answered 503 on purpose: a warning, as on the hot paths.
    if (isUnavailable(err)) logger.warn({ err: err.message, request_id: rid }, 'dependency unavailable: answered 503');
    else if (!appErr.isClientError && err instanceof AppError) logger.error({ err, request_id: rid }, 'server error');
    if (res.headersSent) return;
    const page = res.locals.errorPage;
    if (page === undefined) return writeErrorJson(req, res, appErr, rid, undefined, false);
    sendErrorPage(res, appErr, page);
  };
}

/**
 * Bodies under `prefix` may be up to `limit` (the default is 64 KB): SCIM's whole member list of a group, say
 * (JSON), or less: the token endpoint's form (`form`: application/x-www-form-urlencoded, parsed flat, so a
 * repeated parameter is an array its route refuses).
 */
export interface BodyLimit {
  prefix: string;
  limit: string;
  type?: 'json' | 'form';
}

export interface ExpressAppOptions {
  logger: Logger;
  trustedProxies: TrustedProxies;
  bodyLimits?: readonly BodyLimit[];
  /**
   * Bodies under `prefix` are kept as they came (a Buffer in req.body, any content type, up to `limit`), not
   * parsed: a secret scanner signs its report's raw bytes, which no re-serialization of a parse reproduces.
   */
  rawBodies?: readonly BodyLimit[];
  /** Mounts the application's routers, in order, before the 404 and error handlers. */
  mount: (app: Express) => void;
}

export function createExpressApp(options: ExpressAppOptions): Express {
  const { logger, trustedProxies } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // Express's own req.ip is not used; the address comes from TrustedProxies.
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    const rid = requestIdOf(req, trustedProxies);
    res.locals.requestId = rid;
    res.locals.clientIp = trustedProxies.clientIp(req);
    res.setHeader('X-Request-Id', rid);
    const start = process.hrtime.bigint();
    // The path as it came (originalUrl, without the query): a mounted router rewrites req.url and req.path
    // (`/me` for /gateway/v1/me), and the line is written when the answer finishes, inside that router.
    res.on('finish', () => {
      logger.info(
        { request_id: rid, method: req.method, path: loggablePath(pathOf(req.originalUrl)), status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6, ip: res.locals.clientIp },
        'request',
      );
    });
    next();
  });

  app.use(
    helmet({
      // The policy is src/http/csp.ts's, set below (the login pages widen only its form-action).
      contentSecurityPolicy: false,
      crossOriginEmbedderPolicy: false,
      strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
      referrerPolicy: { policy: 'no-referrer' },
    }),
  );
  app.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  // A raw body or a larger (or smaller) limit is applied first; the general parser then sees the body as read already.
  for (const x of options.rawBodies ?? []) app.use(x.prefix, express.raw({ limit: x.limit, type: () => true }));
  for (const x of options.bodyLimits ?? []) {
    app.use(x.prefix, x.type === 'form' ? express.urlencoded({ extended: false, limit: x.limit, parameterLimit: 10 }) : express.json({ limit: x.limit, strict: true, type: ['application/json', 'application/*+json'] }));
  }
  app.use(express.json({ limit: '64kb', strict: true, type: ['application/json', 'application/*+json'] }));
  app.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }));
  app.use((req, _res, next) => {
    const where = nulCharacterIn(req);
    next(where ? errors.badRequest(`${where} contains a NUL character (U+0000), which no field accepts`) : undefined);
  });

  options.mount(app);

  // The path as it came (a router may have rewritten req.url on its way, as SCIM's drops /v2).
  app.use((req, _res, next) => next(errors.notFound(`${req.method} ${req.originalUrl.split('?')[0] ?? req.path}`)));
  app.use(createErrorHandler(logger));
  return app;
}

/**
 * Where a request carries U+0000 (the decoded path, a query value, a body string or field name),
 * or null. No field accepts it, and PostgreSQL cannot store it in text: it failed the query with
 * a 500, where SQLite stored it. Refused here, once, for both databases alike.
 */
export function nulCharacterIn(req: Pick<Request, 'path' | 'query' | 'body'>): string | null {
  if (req.path.includes('%00')) {
    try {
      if (decodeURIComponent(req.path).includes('\0')) return 'the path';
    } catch {
      // Malformed percent-encoding: the router answers it (malformed_path).
    }
  }
  if (containsNul(req.query)) return 'the query string';
  if (containsNul(req.body)) return 'the request body';
  return null;
}

function containsNul(value: unknown): boolean {
  // Iterative: a 64 KB JSON body can nest deeper than the call stack.
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\0')) return true;
    } else if (Buffer.isBuffer(v)) {
      // A raw body (rawBodies) is bytes for its route to read, not fields: its route judges it.
      continue;
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\0')) return true;
        stack.push(child);
      }
    }
  }
  return false;
}
