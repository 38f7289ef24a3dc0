import type { NextFunction, Request, Response, Router } from 'express';
import type { PageRequest } from '../db/keyset.ts';
import { AppError } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
import type { PathParams } from '../http/api-router.ts';
import { httpStatusOf } from '../http/errors.ts';
import { PAGE_LIMIT_MAX } from '../http/pagination.ts';
import type { Notices } from '../html/html.ts';
import type { Flash, FlashStore } from './flash.ts';
import { formOf } from './form.ts';
import type { Viewer } from './views/common.ts';

/** The pages show a list's first page at the API's largest page size (the key cap keeps key lists well below it). */
export const LIST_PAGE: PageRequest = { limit: PAGE_LIMIT_MAX, after: null };
/** 403s that are about what was asked for, not who asks: shown next to the form like bad input. */
const POLICY_REFUSALS = new Set<ErrorCode>(['enterprise_feature', 'personal_keys_disabled']);

/**
 * The parameters of the route at path P, named by its template as the API router names them
 * ('/teams/:team' → params.team): a misspelt name does not compile. Express matched every one, so none is missing.
 */
export type Params<P extends string> = Readonly<Record<PathParams<P>, string>>;

/** The signed-in person, as the page middleware (page-session.ts) found them. */
export function viewerOf(res: Response): Viewer {
  return res.locals.viewer as Viewer;
}

export function flashNotices(f: Flash | null): Notices {
  return { notice: f?.notice, error: f?.error };
}

/** The problems of a failed form, field by field (a problem of the request as a whole is the form's). */
function problemsOf(err: AppError): Notices['problems'] {
  return err.problems?.map((p) => ({ field: p.field === '' ? 'form' : p.field, code: p.code, message: p.message }));
}

/**
 * Renders the page at path P (again, after a refused form, with the problem and what was typed). A form
 * under the page (P's parameters and more) may rerender it; one whose template lacks a parameter the page reads may not.
 */
export type Rerender<P extends string = string> = (req: Request, res: Response, status: number, extras: { notices: Notices; form: Record<string, string> }, params: Params<P>) => Promise<void>;

/**
 * Post/redirect/get, the one way a form's POST ends: on success the outcome
 * goes into the flash and the browser is sent to the page (303); input the
 * service refused (400, 409, 422, a policy's 403) shows the page again with
 * the problem and what was typed; anything else is the error page.
 */
export function formAction(router: Router, flashes: FlashStore) {
  /** Registers the form's POST at path; the path alone (NoInfer) names the params every callback gets. */
  return <const P extends string>(
    path: P,
    target: (params: Params<NoInfer<P>>) => string,
    run: (req: Request, v: Viewer, params: Params<NoInfer<P>>) => Promise<Flash>,
    rerender: Rerender<NoInfer<P>>,
  ): void => {
    router.post(path, async (req: Request, res: Response, next: NextFunction) => {
      const params = req.params as Params<P>;
      try {
        const flash = await run(req, viewerOf(res), params);
        flashes.set(req, flash);
        res.redirect(303, target(params));
      } catch (err) {
        if (err instanceof AppError && (err.kind === 'invalid' || err.kind === 'conflict' || err.kind === 'unprocessable' || POLICY_REFUSALS.has(err.code))) {
          try {
            await rerender(req, res, httpStatusOf(err), { notices: { error: err.message, problems: problemsOf(err) }, form: formOf(req) }, params);
          } catch (e) {
            next(e);
          }
          return;
        }
        next(err);
      }
    });
  };
}

export type FormAction = ReturnType<typeof formAction>;
