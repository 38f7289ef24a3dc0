import { Router } from 'express';
import type { ErrorRequestHandler, Request } from 'express';
import { AppError } from '../errors/app-error.ts';
import type { BodyLimit } from '../http/express-app.ts';
import { clientErrorOf } from '../http/errors.ts';
import type { TokenExchangeService } from './token-exchange.service.ts';

/** Where trackgate's own OAuth endpoints live (every error under it is RFC 6749's: src/http/errors.ts isOidcPath). */
export const OIDC_PREFIX = '/oidc';

/** RFC 7523's grant type, the only one the token endpoint takes. */
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * The token request's form: a workload token is a JWT of one or two KB (GitHub's ~1 KB, Kubernetes' ~1 KB);
 * 8 KB leaves room for many claims and refuses anything else before it is parsed.
 */
const FORM_LIMIT_BYTES = 8 * 1024;
export const oidcBodyLimit: BodyLimit = { prefix: OIDC_PREFIX, limit: `${FORM_LIMIT_BYTES / 1024}kb`, type: 'form' };

function invalidRequest(message: string, kind?: 'unsupported'): AppError {
  return new AppError('oauth_invalid_request', message, kind ? { kind } : undefined);
}

/** One parameter of the form, exactly once (RFC 6749 §3.2: "parameters MUST NOT be included more than once"), or undefined when absent. */
function param(req: Request, name: string): string | undefined {
  const body = req.body as Record<string, unknown>;
  if (!Object.hasOwn(body, name)) return undefined;
  const v = body[name];
  if (typeof v !== 'string') throw invalidRequest(`the parameter "${name}" is repeated or malformed: send it once`);
  return v;
}

/**
 * POST /oidc/token (RFC 6749 §3.2 with RFC 7523 §2.1's grant): no client authentication, a form body with
 * `grant_type` and `assertion`; answers `{access_token, token_type, expires_in}` that no cache may keep.
 * HTTP only: the checks are TokenExchangeService's.
 */
export function createOidcRouter(exchange: TokenExchangeService): Router {
  const router = Router();
  router.use((_req, res, next) => {
    // Tokens and refusals alike are never cached (RFC 6749 §5.1); Cache-Control is the app's for every answer.
    res.setHeader('Pragma', 'no-cache');
    next();
  });
  router.post('/token', (req, res, next) => {
    (async () => {
      if (!req.is('application/x-www-form-urlencoded')) {
        throw invalidRequest('the token request must be a form: Content-Type application/x-www-form-urlencoded (RFC 6749 §3.2)', 'unsupported');
      }
      const grantType = param(req, 'grant_type');
      if (grantType === undefined || grantType === '') throw invalidRequest(`grant_type is missing: send grant_type=${JWT_BEARER}`);
      if (grantType !== JWT_BEARER) throw new AppError('oauth_unsupported_grant_type', `only grant_type=${JWT_BEARER} is supported (RFC 7523): exchange a workload identity token`);
      const assertion = param(req, 'assertion');
      if (assertion === undefined || assertion === '') throw invalidRequest('assertion is missing: send the workload identity token (a JWT) as assertion');
      const issued = await exchange.exchange(assertion, { ip: res.locals.clientIp, requestId: res.locals.requestId });
      res.status(200).json({ access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn });
    })().catch(next);
  });
  router.all('/token', (req, res, next) => {
    res.setHeader('Allow', 'POST');
    next(new AppError('method_not_allowed', `${req.method} is not allowed on the token endpoint: POST a form`));
  });
  return router;
}

/**
 * The body parser's refusals under /oidc, as RFC 6749 wants them: 400 invalid_request (a body over the
 * form's limit, a form that does not parse, a JSON body that does not either). Mounted at OIDC_PREFIX after
 * the router, as an error handler of the app: the parser runs before the router is reached.
 */
export const oidcBodyErrors: ErrorRequestHandler = (err, _req, _res, next) => {
  if (err instanceof AppError) return next(err);
  const e = err as { type?: unknown };
  const appErr = clientErrorOf(err);
  if (appErr === null) return next(err);
  if (e.type === 'entity.too.large') return next(invalidRequest(`the token request is larger than ${FORM_LIMIT_BYTES / 1024} KB: an assertion is a JWT of a few KB`));
  next(invalidRequest(`the token request could not be read: ${appErr.message}`, appErr.kind === 'unsupported' ? 'unsupported' : undefined));
};
