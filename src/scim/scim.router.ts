import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { readCredentials } from '../auth/credentials.ts';
import type { BodyLimit } from '../http/express-app.ts';
import { SCIM_CONTENT_TYPE } from '../http/errors.ts';
import { presentedToken, scimTokenRefused } from './scim-tokens.service.ts';
import type { ScimClient, ScimTokensService } from './scim-tokens.service.ts';

/** Where SCIM is served: `/scim/v2` is the base URL to give an IdP; `/scim` alone serves the same (some IdP wizards drop the version). */
export const SCIM_PREFIX = '/scim';
export const SCIM_BASE_PATH = '/scim/v2';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The organization's IdP a SCIM request comes from (set by the SCIM router's authentication). */
    scim?: ScimClient;
  }
}

/** SCIM bodies may be up to 1 MB (a group's whole member list); its errors are RFC 7644's everywhere (src/http/raw-response.ts writeErrorJson). */
export const scimBodyLimit: BodyLimit = { prefix: SCIM_PREFIX, limit: '1mb' };

/** Writes a SCIM resource or message: application/scim+json, and the resource's version as its ETag when it has one. */
export function sendScim(res: Response, status: number, body: unknown, etag?: string): void {
  if (etag) res.setHeader('ETag', etag);
  res.status(status).setHeader('Content-Type', SCIM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** The If-Match header of a request that changes a resource (PUT, PATCH, DELETE). */
export function ifMatchOf(req: Request): string | undefined {
  return req.get('if-match') ?? undefined;
}

/** The authenticated SCIM client of a request past the router's authentication. */
export function scimClientOf(res: Response): ScimClient {
  const client = res.locals.scim;
  if (!client) throw new Error('SCIM route reached without authentication');
  return client;
}

/** What each resource's routes are mounted with: the router to add them to, and the public base URL of SCIM (for `meta.location`). */
export interface ScimRouteContext {
  router: Router;
  baseUrl: string;
}

/**
 * The SCIM 2.0 endpoint: every request is authenticated by an organization's SCIM token (Bearer) and acts
 * on that organization only (no tenant in the URL to get wrong). `register` adds the resources' routes
 * (Users, Groups, the discovery endpoints). Mounted at SCIM_PREFIX; serves /scim/v2/… and /scim/… alike.
 */
export function createScimRouter(tokens: ScimTokensService, baseUrl: string, register: (ctx: ScimRouteContext) => void): Router {
  const router = express.Router({ caseSensitive: false, strict: false });
  // Mounted once at /scim: /scim/v2/Users and /scim/Users are the same route.
  router.use((req: Request, _res: Response, next: NextFunction) => {
    const head = req.url.slice(0, 4).toLowerCase();
    if (head === '/v2' || head === '/v2/' || head === '/v2?') req.url = req.url.slice(3) || '/';
    next();
  });
  router.use((req: Request, res: Response, next: NextFunction) => {
    const creds = readCredentials(req);
    const token = presentedToken(creds);
    if (token === null) return next(scimTokenRefused(false));
    tokens
      .authenticate(token, { ip: res.locals.clientIp, requestId: res.locals.requestId })
      .then((client) => {
        if (!client) return next(scimTokenRefused(true));
        res.locals.scim = client;
        next();
      })
      .catch(next);
  });
  register({ router, baseUrl });
  return router;
}
