import type { NextFunction, Request, Response } from 'express';
import type { PageRequest } from '../db/keyset.ts';
import { AppError } from '../errors/app-error.ts';
import type { ErrorCode } from '../errors/catalogue.ts';
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

/** A named route parameter (Express 5 types allow arrays for wildcards; these routes have none). */
export function param(req: Request, name: string): string {
  const v = (req.params as Record<string, string | string[] | undefined>)[name];
  return typeof v === 'string' ? v : '';
}

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

/** Renders a page again after a refused form, with the problem and what was typed. */
export type Rerender = (req: Request, res: Response, status: number, extras: { notices: Notices; form: Record<string, string> }) => Promise<void>;

/**
 * Post/redirect/get, the one way a form's POST ends: on success the outcome
 * goes into the flash and the browser is sent to the page (303); input the
 * service refused (400, 409, 422, a policy's 403) shows the page again with
 * the problem and what was typed; anything else is the error page.
 */
export function formAction(flashes: FlashStore) {
  return (target: (req: Request) => string, run: (req: Request, v: Viewer) => Promise<Flash>, rerender: Rerender) =>
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const flash = await run(req, viewerOf(res));
        flashes.set(req, flash);
        res.redirect(303, target(req));
      } catch (err) {
        if (err instanceof AppError && (err.kind === 'invalid' || err.kind === 'conflict' || err.kind === 'unprocessable' || POLICY_REFUSALS.has(err.code))) {
          try {
            await rerender(req, res, httpStatusOf(err), { notices: { error: err.message, problems: problemsOf(err) }, form: formOf(req) });
          } catch (e) {
            next(e);
          }
          return;
        }
        next(err);
      }
    };
}

export type FormAction = ReturnType<typeof formAction>;
