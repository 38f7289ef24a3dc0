import { z } from 'zod';
import type { RouteSpec } from './api-router.ts';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'request_id'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, request_id: { type: 'string' } },
    },
  },
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  try {
    const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
    delete s.$schema;
    return s;
  } catch {
    return {};
  }
}

/** Builds the OpenAPI 3.1 document from the route declarations. */
export function buildOpenApi(basePath: string, specs: RouteSpec[], info: { version: string; publicUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const s of specs) {
    const path = basePath + s.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const params = [...s.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (s.query) {
      const q = jsonSchema(s.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema } as never);
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(s.responses)) {
      responses[status] = r.schema ? { description: r.description, content: { 'application/json': { schema: jsonSchema(r.schema, 'output') } } } : { description: r.description };
    }
    if (s.body) responses['400'] ??= { description: 'invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    if (s.auth === 'required') responses['401'] ??= { description: 'missing or invalid credentials', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    (paths[path] ??= {})[s.method] = {
      summary: s.summary,
      tags: [s.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(s.body, 'input') } } } } : {}),
      responses,
      ...(s.auth === 'required' ? { security: [{ apiKeyBasic: [] }, { bearer: [] }, { session: [] }] } : { security: [] }),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'trackgate management API',
      version: info.version,
      description:
        'Identity gateway of the tracking service: organizations, teams, users, API keys, SSO connections. Authenticate with HTTP Basic (user "api", password = API key), a Bearer API key or access token, or the browser session (writes then need the X-CSRF-Token header).',
    },
    servers: [{ url: info.publicUrl }],
    components: {
      securitySchemes: {
        apiKeyBasic: { type: 'http', scheme: 'basic', description: 'user "api", password = the API key' },
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'trackgate.sid' },
      },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}
