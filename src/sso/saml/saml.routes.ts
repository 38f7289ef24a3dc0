import { parse as parseCookies } from 'cookie';
import express from 'express';
import type { Request, Response, Router } from 'express';
import { AppError, errors } from '../../errors/app-error.ts';
import type { BodyLimit } from '../../http/express-app.ts';
import { errorPages, sendErrorPage } from '../../http/express-app.ts';
import { safeReturnTo } from '../../http/return-to.ts';
import type { Logger } from '../../log/logger.ts';
import { BINDING_COOKIE } from '../login.routes.ts';
import { OidcLoginError } from '../oidc/problems.ts';
import { errorPage } from '../pages.ts';
import type { Authenticator } from '../passport/authenticator.ts';
import { SessionManager } from '../session-store.ts';
import type { SsoService } from '../sso.service.ts';
import type { SamlLogins, SamlOutcome } from './saml-login.ts';

/**
 * A SAML response with a few hundred group values is larger than the 64 KB every other form may be; this
 * much, for the ACS only.
 */
export const samlBodyLimit: BodyLimit = { prefix: '/login/saml', limit: '512kb', type: 'form' };

export interface SamlRoutesOptions {
  sso: SsoService;
  saml: SamlLogins;
  authenticator: Authenticator;
  sessions: SessionManager;
  logger: Logger;
}

/** GET /login/saml/:id/metadata (our SP metadata) and POST /login/saml/:id/acs (the IdP's response, HTTP-POST binding). */
export function createSamlRouter(o: SamlRoutesOptions): Router {
  const router = express.Router();
  const sessionMw = o.sessions.middleware();
  const htmlErrors = errorPages((view) =>
    errorPage({ title: 'Sign-in failed', message: view.status >= 500 ? 'Something went wrong on our side. Try again in a moment.' : view.message, code: view.code, requestId: view.requestId }),
  );
  const failed = (res: Response, err: OidcLoginError) => {
    o.logger.warn({ request_id: res.locals.requestId, code: err.code, details: err.details, cause: err.cause instanceof Error ? err.cause.message : undefined }, `sso: SAML login failed: ${err.message}`);
    sendErrorPage(res, err, (view) => errorPage({ title: 'Sign-in failed', message: view.message, code: view.code, requestId: view.requestId }));
  };

  router.get('/login/saml/:id/metadata', async (req, res, next) => {
    try {
      const c = await o.sso.samlConnection(req.params.id);
      if (!c) throw errors.notFound(`SAML connection "${req.params.id}"`);
      res.setHeader('Content-Type', 'application/samlmetadata+xml; charset=utf-8');
      // Public by nature (the IdP's admin downloads it), and it changes only when trackgate's public URL does.
      res.setHeader('Cache-Control', 'public, max-age=300');
      res.status(200).send(o.saml.spMetadata(c));
    } catch (err) {
      next(err);
    }
  });

  router.post('/login/saml/:id/acs', htmlErrors, sessionMw, async (req: Request, res: Response, next) => {
    try {
      const c = await o.sso.samlConnection(req.params.id as string);
      if (!c) {
        // Deleted (perhaps on another instance): this instance forgets its strategy.
        o.saml.drop(req.params.id as string);
        throw errors.notFound(`SAML connection "${String(req.params.id)}"`);
      }
      const body = (req.body ?? {}) as Record<string, unknown>;
      const query = req.query as Record<string, unknown>;
      // The HTTP-POST binding of a response, nothing else: passport-saml would also take a response or a logout
      // request in the query (the Redirect binding), which this ACS does not offer.
      if (typeof body.SAMLResponse !== 'string' || 'SAMLResponse' in query || 'SAMLRequest' in query || 'SAMLRequest' in body) {
        return failed(res, new OidcLoginError('saml_response_missing', 'this address takes an identity provider\'s SAML response (HTTP-POST); start the sign-in from trackgate\'s sign-in page'));
      }
      req.body = { SAMLResponse: body.SAMLResponse };
      const header = req.headers.cookie;
      const binding = header ? parseCookies(header)[BINDING_COOKIE] : undefined;
      const name = o.saml.strategyName(c);
      const done = async (err: unknown, outcome: SamlOutcome | false | undefined) => {
        try {
          if (err) {
            // A store that is down (AppError: 503) is no verdict on the response.
            if (err instanceof AppError) throw err;
            // The strategy's own refusals come named and audited; node-saml's come as plain errors.
            return failed(res, err instanceof OidcLoginError ? err : await o.saml.refused(c, err, { ip: res.locals.clientIp, requestId: res.locals.requestId }));
          }
          if (!outcome) return failed(res, new OidcLoginError('saml_response_invalid', 'the SAML response signed nobody in'));
          if ('test' in outcome) return res.redirect(303, `/admin/sso/test-report?r=${encodeURIComponent(outcome.sealed)}`);
          await SessionManager.establish(req, { userId: outcome.user.id, orgId: outcome.org.id, method: 'sso', connectionId: outcome.connectionId });
          o.logger.info({ request_id: res.locals.requestId, user: outcome.user.username, org: outcome.org.slug, connection_id: outcome.connectionId }, 'sso: SAML login');
          res.redirect(303, safeReturnTo(outcome.returnTo));
        } catch (e) {
          next(e);
        }
      };
      o.saml.runAcs(binding, () => {
        const authenticate = o.authenticator.authenticate(name, { session: false }, (err: unknown, user: unknown) => void done(err, user as SamlOutcome | false | undefined)) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
        authenticate(req, res, next);
      });
    } catch (err) {
      next(err);
    }
  });

  return router;
}
