import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import { AppError } from '../errors/app-error.ts';
import { parse } from './validation.ts';

type RouteAuth = 'none' | 'required';

/** Status → description (and optionally the response schema) for the OpenAPI document and the response check. */
type RouteResponses = Record<number, { description: string; schema?: z.ZodType }>;

/** A route declaration with its types erased: what the OpenAPI document and the router keep. */
export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express path, e.g. /orgs/:org/users. */
  path: string;
  summary: string;
  tag: string;
  /** 'none': no credentials needed; 'required': an API key, access token or session. */
  auth: RouteAuth;
  body?: z.ZodType;
  query?: z.ZodType;
  responses: RouteResponses;
}

/** A route declaration as written: its path, auth, schemas and responses type its handler. */
interface RouteDeclaration<P extends string, A extends RouteAuth, B extends z.ZodType, Q extends z.ZodType, R extends RouteResponses> extends RouteSpec {
  path: P;
  auth: A;
  body?: B;
  query?: Q;
  responses: R;
}

/** The names of an Express path's parameters: '/teams/:team/members/:username' → 'team' | 'username'. */
export type PathParams<P extends string> = P extends `${string}:${infer Name}/${infer Rest}` ? Name | PathParams<Rest> : P extends `${string}:${infer Name}` ? Name : never;

type RouteInput<P extends string, A extends RouteAuth, B, Q> = {
  req: Request;
  res: Response;
  body: B;
  query: Q;
  /** Express matched every one of them, so none is undefined. */
  params: Record<PathParams<P>, string>;
  // An unauthenticated route has no actor at all, rather than one whose principal may be missing.
} & (A extends 'required' ? { actor: Actor } : unknown);

type Headers = Record<string, string>;

/**
 * What a handler may return: one of its declared statuses, with a body of that
 * status's schema (its input type: the body is what the schema would parse), or
 * none when the status declares no schema; undefined is the declared 204.
 */
type RouteResult<R extends RouteResponses> =
  | { [S in keyof R & number]: R[S] extends { schema: infer Z extends z.ZodType } ? { status: S; body: z.input<Z>; headers?: Headers } : { status: S; body?: undefined; headers?: Headers } }[keyof R & number]
  | (204 extends keyof R ? undefined : never);

interface ApiRouterOptions {
  /**
   * Parse every handler's answer against the schema declared for its status and
   * answer 500 on a mismatch (TRACKGATE_VALIDATE_RESPONSES, set by the tests).
   * Off in production: the API then pays nothing for it.
   */
  validateResponses?: boolean;
}

/**
 * A thin layer over an Express router: each route declares its method, path,
 * body and query schemas and its responses once; the same declaration
 * validates requests, types the handler and feeds the OpenAPI document.
 */
export class ApiRouter {
  readonly router = express.Router();
  readonly specs: RouteSpec[] = [];
  /** The declared routes, in the order they were added. */
  private readonly routes = express.Router();
  /**
   * What a request to a declared path with a method none of its routes serves reaches: 405 with Allow, as the
   * lean paths and /oidc/token answer, rather than the 404 of a path that does not exist. After every route of
   * `routes` (a router of its own), so a path that another declaration's template also matches is never refused.
   */
  private readonly otherMethods = express.Router();
  private readonly methodsOf = new Map<string, Set<string>>();

  constructor(
    private readonly requireAuth: (req: Request, res: Response, next: NextFunction) => void,
    private readonly options: ApiRouterOptions = {},
  ) {
    this.router.use(this.routes, this.otherMethods);
  }

  add<const P extends string, A extends RouteAuth, R extends RouteResponses, B extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined>(
    spec: RouteDeclaration<P, A, B, Q, R>,
    handler: (input: RouteInput<P, A, z.output<B>, z.output<Q>>) => Promise<RouteResult<NoInfer<R>>>,
  ): void {
    this.specs.push(spec);
    const validateResponses = this.options.validateResponses === true;
    const run = async (req: Request, res: Response) => {
      const body = spec.body ? parse(spec.body, req.body ?? {}, 'request body') : undefined;
      const query = spec.query ? parse(spec.query, req.query, 'query string') : undefined;
      const params = req.params as Record<PathParams<P>, string>;
      const result = await handler(
        spec.auth === 'required'
          ? { req, res, body: body as z.output<B>, query: query as z.output<Q>, params, actor: actorOf(res) }
          : // Not 'required', so A is 'none' and the input has no actor; the compiler cannot narrow A from spec.auth.
            ({ req, res, body: body as z.output<B>, query: query as z.output<Q>, params } as RouteInput<P, A, z.output<B>, z.output<Q>>),
      );
      if (res.headersSent) return;
      if (validateResponses) checkResponse(spec, result);
      if (!result) {
        res.status(204).end();
        return;
      }
      if (result.headers) res.set(result.headers);
      if (result.body === undefined) res.status(result.status).end();
      else res.status(result.status).json(result.body);
    };
    const handlers = spec.auth === 'required' ? [this.requireAuth, run] : [run];
    this.routes[spec.method](spec.path, ...handlers);
    this.refuseOtherMethods(spec);
  }

  private refuseOtherMethods(spec: RouteSpec): void {
    const known = this.methodsOf.get(spec.path);
    if (known) {
      known.add(spec.method.toUpperCase());
      return;
    }
    const methods = new Set([spec.method.toUpperCase()]);
    this.methodsOf.set(spec.path, methods);
    this.otherMethods.all(spec.path, (req, res, next) => {
      // Express answers HEAD with a GET route and OPTIONS by itself, so neither comes here.
      const allow = [...methods, ...(methods.has('GET') ? ['HEAD'] : [])].sort().join(', ');
      res.setHeader('Allow', allow);
      next(new AppError('method_not_allowed', `${req.method} is not allowed on this path: use ${allow}`));
    });
  }
}

/** The actor of an authenticated route: requireAuth ran before it and set the principal. */
function actorOf(res: Response): Actor {
  const principal = res.locals.principal;
  if (!principal) throw new Error('an authenticated route ran without a principal (requireAuth did not run)');
  return { principal, ip: res.locals.clientIp, requestId: res.locals.requestId };
}

/**
 * Throws (a 500, logged by the error handler) when a handler's answer is not
 * what its declaration says: an undeclared status, a body where none is
 * declared or none where one is, or a body its schema rejects or that holds
 * fields the schema does not name. The body is checked as the client gets
 * it, after JSON serialization.
 */
function checkResponse(spec: RouteSpec, result: { status: number; body?: unknown } | undefined): void {
  const status = result ? result.status : 204;
  const declared = spec.responses[status];
  const fail = (why: string) => {
    throw new Error(`response of ${spec.method.toUpperCase()} ${spec.path} does not match its declaration: ${status} ${why}`);
  };
  if (!declared) return fail('is not a declared status');
  const body = result?.body;
  if (body === undefined) {
    if (declared.schema) fail('has no body but declares a schema');
    return;
  }
  if (!declared.schema) return fail('has a body but declares no schema');
  const wire: unknown = JSON.parse(JSON.stringify(body));
  const parsed = declared.schema.safeParse(wire);
  if (!parsed.success) return fail(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  const extra: string[] = [];
  undeclaredFields(wire, parsed.data, '', extra);
  if (extra.length) fail(`has fields its schema does not declare: ${extra.join(', ')}`);
}

/** Fields of the sent body that parsing dropped, i.e. that the schema does not declare. */
function undeclaredFields(wire: unknown, parsed: unknown, path: string, out: string[]): void {
  if (Array.isArray(wire) && Array.isArray(parsed)) {
    wire.forEach((v, i) => undeclaredFields(v, parsed[i], `${path}[${i}]`, out));
  } else if (isRecord(wire) && isRecord(parsed)) {
    for (const [k, v] of Object.entries(wire)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in parsed)) out.push(p);
      else undeclaredFields(v, parsed[k], p, out);
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
