import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import type { Principal } from '../src/auth/principal.ts';
import { ApiRouter } from '../src/http/api-router.ts';
import { TrustedProxies } from '../src/http/client-ip.ts';
import { createExpressApp } from '../src/http/express-app.ts';
import { createLogger } from '../src/log/logger.ts';

// The one route declaration types the handler (params, actor, response) and, with
// validateResponses (on in every test app), checks each answer at run time. These routes
// are deliberately wrong; the @ts-expect-error lines prove that the compiler refuses them.

const thing = z.object({ id: z.string(), name: z.string(), archived_at: z.string().nullable() });

function register(api: ApiRouter): void {
  api.add(
    { method: 'get', path: '/things/:thing', summary: 'right', tag: 't', auth: 'required', responses: { 200: { description: 'ok', schema: thing } } },
    async ({ params, actor }) => ({ status: 200, body: { id: params.thing, name: actor.principal.username, archived_at: null } }),
  );
  api.add(
    { method: 'get', path: '/missing-field', summary: 'a view that lacks a field of its schema', tag: 't', auth: 'required', responses: { 200: { description: 'ok', schema: thing } } },
    // @ts-expect-error archived_at is declared by the schema and missing from the body
    async () => ({ status: 200, body: { id: 'a', name: 'b' } }),
  );
  api.add(
    { method: 'get', path: '/extra-field', summary: 'a view with a field its schema does not declare', tag: 't', auth: 'required', responses: { 200: { description: 'ok', schema: thing } } },
    async () => {
      // Not a fresh object literal, so the compiler's excess-property check cannot see it: the run-time check does.
      const view = { id: 'a', name: 'b', archived_at: null, secret_hash: 'x' };
      return { status: 200, body: view };
    },
  );
  api.add(
    { method: 'get', path: '/wrong-type', summary: 'a field of the wrong type', tag: 't', auth: 'required', responses: { 200: { description: 'ok', schema: thing } } },
    // @ts-expect-error archived_at is a string or null, not a number
    async () => ({ status: 200, body: { id: 'a', name: 'b', archived_at: 42 } }),
  );
  api.add(
    { method: 'post', path: '/undeclared-status', summary: 'a status the route does not declare', tag: 't', auth: 'required', responses: { 201: { description: 'created', schema: thing } } },
    // @ts-expect-error 200 is not a declared status
    async () => ({ status: 200, body: { id: 'a', name: 'b', archived_at: null } }),
  );
  api.add(
    { method: 'delete', path: '/things/:thing', summary: 'no 204 declared', tag: 't', auth: 'required', responses: { 200: { description: 'ok', schema: thing } } },
    // @ts-expect-error returning nothing (204) needs a declared 204
    async () => undefined,
  );
  api.add(
    { method: 'get', path: '/public/:slug', summary: 'unauthenticated', tag: 't', auth: 'none', responses: { 200: { description: 'ok', schema: z.object({ slug: z.string() }) } } },
    async (input) => {
      // @ts-expect-error an unauthenticated route has no actor
      void input.actor;
      // @ts-expect-error only the path's own parameters exist
      void input.params.org;
      return { status: 200, body: { slug: input.params.slug } };
    },
  );
}

const principal = { type: 'user', via: 'api_key', username: 'alice' } as Principal;

async function serve(validateResponses: boolean, logFile: string): Promise<{ url: string; server: Server }> {
  const api = new ApiRouter(
    (_req, res, next) => {
      res.locals.principal = principal;
      next();
    },
    { validateResponses },
  );
  register(api);
  const app = createExpressApp({ logger: createLogger({ level: 'error', file: logFile }), trustedProxies: new TrustedProxies([]), mount: (a) => a.use(api.router) });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { url: `http://127.0.0.1:${address.port}`, server };
}

describe('responses checked against their declared schemas', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'trackgate-response-schemas-'));
  const logFile = join(tmp, 'check.log');
  let on: { url: string; server: Server };
  let off: { url: string; server: Server };
  before(async () => {
    on = await serve(true, logFile);
    off = await serve(false, join(tmp, 'off.log'));
  });
  after(() => {
    on.server.close();
    off.server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a response that matches its schema goes out as the handler wrote it', async () => {
    const r = await fetch(`${on.url}/things/t1`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { id: 't1', name: 'alice', archived_at: null });
    const p = await fetch(`${on.url}/public/acme`);
    assert.equal(p.status, 200);
    assert.deepEqual(await p.json(), { slug: 'acme' });
  });

  const wrong: [string, string, RegExp][] = [
    ['GET', '/missing-field', /GET \/missing-field does not match its declaration: 200 archived_at: /],
    ['GET', '/extra-field', /200 has fields its schema does not declare: secret_hash/],
    ['GET', '/wrong-type', /200 archived_at: /],
    ['POST', '/undeclared-status', /200 is not a declared status/],
    ['DELETE', '/things/t1', /204 is not a declared status/],
  ];
  for (const [method, path, logged] of wrong) {
    test(`${method} ${path}: a wrong answer is a 500, logged, when the check is on`, async () => {
      const r = await fetch(on.url + path, { method });
      assert.equal(r.status, 500);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'internal_error');
      assert.doesNotMatch(body.error.message, /declare/, 'the client gets no internals');
      assert.match(readFileSync(logFile, 'utf8'), logged);
    });
  }

  test('with the check off (production), the same handlers answer unchecked', async () => {
    assert.equal((await fetch(`${off.url}/extra-field`)).status, 200);
    assert.equal((await fetch(`${off.url}/missing-field`)).status, 200);
    assert.equal((await fetch(`${off.url}/things/t1`, { method: 'DELETE' })).status, 204);
  });
});
