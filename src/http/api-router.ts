import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { Principal } from '../auth/principal.ts';
import { parse } from './validation.ts';

export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express path, e.g. /orgs/:org/users. */
  path: string;
  summary: string;
  tag: string;
  /** 'none': no credentials needed; 'required': an API key, access token or session. */
  auth: 'none' | 'required';
  body?: z.ZodType;
  query?: z.ZodType;
  /** Status → description (and optionally the response schema) for the OpenAPI document. */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

export interface RouteInput<B, Q> {
  req: Request;
  res: Response;
  body: B;
  query: Q;
  params: Record<string, string>;
  actor: Actor;
}

export type RouteResult = { status: number; body?: unknown; headers?: Record<string, string> } | undefined;

/**
 * A thin layer over an Express router: each route declares its method, path,
 * body and query schemas and its responses once; the same declaration
 * validates requests and feeds the OpenAPI document.
 */
export class ApiRouter {
  readonly router = express.Router();
  readonly specs: RouteSpec[] = [];

  constructor(private readonly requireAuth: (req: Request, res: Response, next: NextFunction) => void) {}

  add<B extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined>(
    spec: RouteSpec & { body?: B; query?: Q },
    handler: (input: RouteInput<z.output<B>, z.output<Q>>) => Promise<RouteResult>,
  ): void {
    this.specs.push(spec);
    const run = async (req: Request, res: Response) => {
      const body = spec.body ? parse(spec.body, req.body ?? {}, 'request body') : undefined;
      const query = spec.query ? parse(spec.query, req.query, 'query string') : undefined;
      const principal = res.locals.principal as Principal | undefined;
      const actor = { principal, ip: res.locals.clientIp as string, requestId: res.locals.requestId as string } as Actor;
      const result = await handler({ req, res, body: body as z.output<B>, query: query as z.output<Q>, params: req.params as Record<string, string>, actor });
      if (res.headersSent) return;
      if (!result) {
        res.status(204).end();
        return;
      }
      if (result.headers) res.set(result.headers);
      if (result.body === undefined) res.status(result.status).end();
      else res.status(result.status).json(result.body);
    };
    const handlers = spec.auth === 'required' ? [this.requireAuth, run] : [run];
    this.router[spec.method](spec.path, ...handlers);
  }
}
