/**
 * The demo's tracking API, behind the gateway (TRACKGATE_UPSTREAM_URL): for
 * any path it shows who is calling — the X-Trackgate-* headers it received
 * and the X-Trackgate-Assertion, verified against the gateway's
 * /.well-known/jwks.json as a real tracking API would — as HTML for a browser
 * and JSON otherwise. A GraphQL `viewer` query (what the tracking client asks
 * first) is answered from the same identity.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface DemoApi {
  url: string;
  close(): Promise<void>;
}

interface Caller {
  path: string;
  method: string;
  /** Every X-Trackgate-* header, lower-case names. */
  headers: Record<string, string>;
  assertion: { verified: true; claims: Record<string, unknown> } | { verified: false; error: string } | null;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      // The demo answers from headers; a large upload (a run's files) is read and dropped.
      if (data.length < 256 * 1024) data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

/** The tracking client's first question: who am I? Answered from what the gateway said, the attributed person first. */
function viewer(caller: Caller): Record<string, unknown> | null {
  const claims = caller.assertion?.verified ? caller.assertion.claims : null;
  const username = caller.headers['x-trackgate-attributed-user'] ?? caller.headers['x-trackgate-user'] ?? (claims?.username as string | undefined);
  if (!username) return null;
  const email = caller.headers['x-trackgate-attributed-email'] ?? caller.headers['x-trackgate-email'] ?? (claims?.email as string | undefined) ?? null;
  const teams = (caller.headers['x-trackgate-teams'] ?? '').split(',').filter(Boolean);
  return {
    id: Buffer.from(`User:${username}`).toString('base64'),
    entity: username,
    username,
    email,
    name: username,
    admin: false,
    flags: '{}',
    teams: { edges: teams.map((name) => ({ node: { name } })) },
  };
}

function htmlPage(caller: Caller): string {
  const rows = Object.entries(caller.headers)
    .filter(([k]) => k !== 'x-trackgate-assertion')
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td><code>${escapeHtml(v)}</code></td></tr>`)
    .join('');
  const a = caller.assertion;
  const assertion = !a
    ? '<p>No <code>X-Trackgate-Assertion</code>: this request did not come through the gateway.</p>'
    : a.verified
      ? `<p>✔ Signature verified against the gateway's <code>/.well-known/jwks.json</code>. Claims:</p><pre>${escapeHtml(JSON.stringify(a.claims, null, 2))}</pre>`
      : `<p>✘ Not verified: ${escapeHtml(a.error)}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo tracking API: who is calling</title>
<style>:root { color-scheme: light dark; font-family: system-ui, sans-serif; } body { max-width: 48rem; margin: 2rem auto; padding: 0 1rem; } th { text-align: left; padding-right: 1rem; } pre { overflow-x: auto; }</style></head>
<body><h1>Demo tracking API</h1>
<p><code>${escapeHtml(caller.method)} ${escapeHtml(caller.path)}</code> — what the gateway told this API about the caller.</p>
<h2>Identity headers</h2>${rows ? `<table>${rows}</table>` : '<p>none</p>'}
<h2>Signed assertion</h2>${assertion}
</body></html>`;
}

export async function startDemoApi(options: { port: number; gatewayUrl: string; audience: string }): Promise<DemoApi> {
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.gatewayUrl));

  async function identify(req: IncomingMessage): Promise<Caller> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (k.startsWith('x-trackgate-') && typeof v === 'string') headers[k] = v;
    let assertion: Caller['assertion'] = null;
    const token = headers['x-trackgate-assertion'];
    if (token) {
      try {
        const { payload } = await jwtVerify(token, jwks, { issuer: options.gatewayUrl, audience: options.audience });
        assertion = { verified: true, claims: payload as Record<string, unknown> };
      } catch (err) {
        assertion = { verified: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
    return { path: (req.url ?? '/').split('?')[0]!, method: req.method ?? 'GET', headers, assertion };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const caller = await identify(req);
    res.setHeader('cache-control', 'no-store');
    if (req.method === 'POST' && /\bviewer\b/.test(body) && caller.path.endsWith('/graphql')) {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ data: { viewer: viewer(caller) } }));
    }
    if ((req.headers.accept ?? '').includes('text/html')) {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      return void res.end(htmlPage(caller));
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: caller.path, method: caller.method, identity_headers: caller.headers, assertion: caller.assertion }, null, 2) + '\n');
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      res.statusCode = 500;
      res.end(err instanceof Error ? err.message : String(err));
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${options.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
