/**
 * The demo's identity provider: oidc-provider (an OpenID Certified
 * implementation, a devDependency) on a loopback port, with a sign-in page
 * where you pick a demo user — no password. Every client may use every flow
 * trackgate offers (implicit id_token with form_post or fragment, and the
 * authorization code flow with PKCE, as a public client), so a connection can
 * be switched between them on /admin and still sign in.
 *
 * The page answers POST /interaction/<uid> with `login=<user id>`, the same
 * form oidc-provider's development pages use, so test/support/idp/drive.ts
 * drives it over plain HTTP.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import type { Adapter, AdapterPayload, ClientMetadata, Configuration, KoaContextWithOIDC } from 'oidc-provider';

export interface DemoUser {
  /** The IdP's subject, also what the sign-in page posts. */
  sub: string;
  email: string;
  name: string;
  preferred_username: string;
  groups: string[];
  /** Shown on the sign-in page: what this user is for. */
  about: string;
}

export interface DemoIdp {
  issuer: string;
  close(): Promise<void>;
}

const SCOPES = ['openid', 'email', 'profile', 'groups'];

function clientFor(clientId: string, redirectUris: string[]): ClientMetadata {
  return {
    client_id: clientId,
    redirect_uris: redirectUris,
    response_types: ['id_token', 'code'],
    grant_types: ['implicit', 'authorization_code'],
    // A public client: the code flow is protected by PKCE, which trackgate always sends.
    token_endpoint_auth_method: 'none',
  };
}

const patched = new WeakSet<object>();
/**
 * oidc-provider refuses implicit-flow redirect URIs on http:// and on
 * localhost; the demo's trackgate runs on http://127.0.0.1, so those two
 * client checks are switched off (as oidc-provider's recipes for local
 * development do). Nothing else about the clients is relaxed.
 */
function allowLoopbackImplicitRedirects(provider: Provider): void {
  const schema = (provider.Client as unknown as { Schema: { prototype: { invalidate(message: string, code?: string): void } } }).Schema;
  if (patched.has(schema.prototype)) return;
  const original = schema.prototype.invalidate;
  schema.prototype.invalidate = function invalidate(this: unknown, message: string, code?: string) {
    if (code === 'implicit-force-https' || code === 'implicit-forbid-localhost') return;
    original.call(this, message, code);
  };
  patched.add(schema.prototype);
}

/**
 * The IdP's state (sessions, interactions, codes, grants) in this process's
 * memory, which is what a demo wants: it is gone with the demo. Given
 * explicitly so that oidc-provider does not warn at every start that its
 * built-in one is for development only.
 */
function memoryAdapter(): (model: string) => Adapter {
  const entries = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const read = (key: string): AdapterPayload | undefined => {
    const e = entries.get(key);
    if (e && e.expiresAt <= Date.now()) entries.delete(key);
    return e && e.expiresAt > Date.now() ? e.payload : undefined;
  };
  return (model) => ({
    upsert: async (id, payload, expiresIn) => void entries.set(`${model}:${id}`, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity }),
    find: async (id) => read(`${model}:${id}`),
    findByUid: async (uid) => [...entries.keys()].filter((k) => k.startsWith(`${model}:`)).map(read).find((p) => p?.uid === uid),
    findByUserCode: async (code) => [...entries.keys()].filter((k) => k.startsWith(`${model}:`)).map(read).find((p) => p?.userCode === code),
    consume: async (id) => {
      const p = read(`${model}:${id}`);
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    },
    destroy: async (id) => void entries.delete(`${model}:${id}`),
    revokeByGrantId: async (grantId) => {
      for (const [k, e] of entries) if (e.payload.grantId === grantId) entries.delete(k);
    },
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  // No form-action: the sign-in form's answer redirects on to trackgate's callback (the code and fragment modes), and
  // browsers hold a form's redirects to form-action too.
  res.setHeader('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  .user { display: block; width: 100%; text-align: left; margin: .5rem 0; padding: .75rem 1rem; border: 1px solid #8886; border-radius: .5rem; background: transparent; color: inherit; font: inherit; cursor: pointer; }
  .user:hover, .user:focus { border-color: #36f; outline: none; }
  .user small { display: block; opacity: .75; }
  code { font-size: .9em; }
</style></head>
<body>${body}</body></html>`);
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      data += chunk;
      if (data.length > 64 * 1024) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

export async function startDemoIdp(options: { port: number; users: DemoUser[]; clients: Array<{ clientId: string; redirectUris: string[] }> }): Promise<DemoIdp> {
  const issuer = `http://127.0.0.1:${options.port}`;
  const users = new Map(options.users.map((u) => [u.sub, u]));
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'demo-idp', alg: 'RS256', use: 'sig' };

  const config: Configuration = {
    adapter: memoryAdapter(),
    clients: options.clients.map((c) => clientFor(c.clientId, c.redirectUris)),
    jwks: { keys: [signingKey as never] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: SCOPES,
    // The scopes' claims in the ID token also in the code flow (as Okta puts groups there): trackgate reads the ID token only.
    conformIdTokenClaims: false,
    responseTypes: ['code', 'id_token'],
    features: { devInteractions: { enabled: false } },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Grant: 3600, Interaction: 600, Session: 3600 },
    // No consent screen: the demo's clients are first-party, so every scope the IdP has is granted at sign-in.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const { session, client } = ctx.oidc;
      const accountId = session?.accountId;
      if (!session || !accountId || !client) return undefined;
      const existing = session.grantIdFor(client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
      grant.addOIDCScope(SCOPES.join(' '));
      await grant.save();
      return grant;
    },
    findAccount: (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: () => ({ sub, email: user.email, email_verified: true, name: user.name, preferred_username: user.preferred_username, groups: user.groups }),
      };
    },
  };
  const provider = new Provider(issuer, config);
  allowLoopbackImplicitRedirects(provider);
  const callback = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return page(res, 400, 'Sign-in expired', '<h1>This sign-in has expired</h1><p>Start again from trackgate.</p>');
    if (req.method === 'POST') {
      const form = await readForm(req);
      const user = users.get(form.get('login') ?? '');
      if (!user) return page(res, 400, 'Unknown user', '<h1>No such demo user</h1><p>Go back and pick one of the list.</p>');
      return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    }
    const client = String(details.params.client_id ?? '');
    const buttons = options.users
      .map(
        (u) =>
          `<button class="user" type="submit" name="login" value="${escapeHtml(u.sub)}"><strong>${escapeHtml(u.name)}</strong> &lt;${escapeHtml(u.email)}&gt;` +
          `<small>groups: ${u.groups.map((g) => `<code>${escapeHtml(g)}</code>`).join(', ') || 'none'} — ${escapeHtml(u.about)}</small></button>`,
      )
      .join('\n');
    return page(
      res,
      200,
      'Demo IdP: sign in',
      `<h1>Demo identity provider</h1>
<p>Signing in to <code>${escapeHtml(client)}</code>. Pick a demo user (no password). Any user can be picked; trackgate decides whether this organization's connection lets them in.</p>
<form method="post" action="/interaction/${escapeHtml(details.uid)}">
${buttons}
</form>`,
    );
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(path);
    if (!m) return void callback(req, res);
    interaction(req, res, m[1]!).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      const name = err instanceof Error ? err.name : '';
      page(res, name === 'SessionNotFound' ? 400 : 500, 'Demo IdP error', `<h1>Sign-in could not continue</h1><p>${escapeHtml(err instanceof Error ? err.message : String(err))}</p><p>Start again from trackgate.</p>`);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
