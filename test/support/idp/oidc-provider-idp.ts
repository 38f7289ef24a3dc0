import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import Provider from 'oidc-provider';
import type { ClientMetadata, Configuration } from 'oidc-provider';
import { sendJson, startSwappableServer } from './http.ts';
import type { Handler } from './http.ts';

/**
 * Real IdPs for the SSO tests: oidc-provider (OpenID Certified) on
 * 127.0.0.1:<random port>, mounted so that it looks like
 *  - Okta: issuer http://127.0.0.1:<port>/oauth2/default, groups in the ID token;
 *  - Azure AD / Entra ID: one provider per tenant at /<tid>/v2.0 (same signing
 *    keys, as Azure's are common to all tenants), tokens with tid and oid, and
 *    /organizations/v2.0 and /common/v2.0 discovery documents answering with
 *    the issuer template http://127.0.0.1:<port>/{tenantid}/v2.0.
 */

export interface IdpUser {
  sub: string;
  email?: string;
  name?: string;
  preferred_username?: string;
  groups?: string[];
  /** Any other claims (tid, oid, hasgroups, _claim_names, ...). */
  extra?: Record<string, unknown>;
}

export interface IdpClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  /** implicit: response_type id_token; code: authorization code + PKCE. */
  kind: 'implicit' | 'code';
}

function toProviderClient(c: IdpClient): ClientMetadata {
  if (c.kind === 'implicit') {
    return {
      client_id: c.client_id,
      redirect_uris: c.redirect_uris,
      response_types: ['id_token'],
      grant_types: ['implicit'],
      token_endpoint_auth_method: 'none',
    };
  }
  return {
    client_id: c.client_id,
    ...(c.client_secret ? { client_secret: c.client_secret } : {}),
    redirect_uris: c.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
  };
}

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `k-${Math.random().toString(36).slice(2, 10)}`, alg: 'RS256', use: 'sig' };
}

const patched = new WeakSet<object>();
/**
 * oidc-provider refuses implicit-flow redirect URIs on http:// and localhost
 * (client schema checks "implicit-force-https" / "implicit-forbid-localhost").
 * The tests' relying party runs on http://127.0.0.1, so those two checks are
 * switched off, as oidc-provider's own recipes do for local development.
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

function buildProvider(issuer: string, keys: JWK[], clients: IdpClient[], users: Map<string, IdpUser>): Provider {
  const config: Configuration = {
    clients: clients.map(toProviderClient),
    jwks: { keys: keys as never },
    cookies: { keys: ['test-idp-cookie-key-0123456789'] },
    claims: {
      openid: ['sub', 'tid', 'oid', 'xms_edov'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups', 'hasgroups', '_claim_names', '_claim_sources'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Scope-derived claims in the ID token also when an access token is issued (code flow), as Okta does with a groups claim.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => false },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Grant: 3600, Interaction: 600, Session: 3600 },
    responseTypes: ['code', 'id_token', 'none'],
    findAccount: async (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          ...(user.email ? { email: user.email, email_verified: true } : {}),
          ...(user.name ? { name: user.name } : {}),
          ...(user.preferred_username ? { preferred_username: user.preferred_username } : {}),
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.extra ?? {}),
        }),
      };
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
  const provider = new Provider(issuer, config);
  allowLoopbackImplicitRedirects(provider);
  return provider;
}

/** Mounts a provider's handler under a path prefix (koa's callback sees the path without it). */
function mount(prefix: string, provider: Provider): { prefix: string; handle: Handler } {
  const callback = provider.callback() as Handler;
  return {
    prefix,
    handle: (req, res) => {
      // oidc-provider derives its endpoint URLs from the difference between
      // originalUrl and url, as when mounted with express' app.use(prefix, ...).
      (req as { originalUrl?: string }).originalUrl = req.url;
      req.url = req.url!.slice(prefix.length) || '/';
      callback(req, res);
    },
  };
}

export interface OktaLikeIdp {
  issuer: string;
  origin: string;
  users: Map<string, IdpUser>;
  addUser(user: IdpUser): void;
  /** Replace the clients (e.g. once the relying party's callback URI is known). */
  setClients(clients: IdpClient[]): Promise<void>;
  /** New signing key first, the old one still published after it. */
  rotateKeys(options?: { dropOld?: boolean }): Promise<void>;
  currentKid(): string;
  close(): Promise<void>;
}

export async function startOktaLikeIdp(options: { clients?: IdpClient[]; users?: IdpUser[] } = {}): Promise<OktaLikeIdp> {
  const srv = await startSwappableServer();
  const issuer = `${srv.origin}/oauth2/default`;
  const users = new Map((options.users ?? []).map((u) => [u.sub, u]));
  let keys: JWK[] = [await newSigningKey()];
  let clients = options.clients ?? [];
  const rebuild = () => {
    const m = mount('/oauth2/default', buildProvider(issuer, keys, clients, users));
    srv.setHandler((req, res) => {
      if (req.url!.startsWith('/oauth2/default/') || req.url === '/oauth2/default') return m.handle(req, res);
      sendJson(res, 404, { error: 'not_found' });
    });
  };
  rebuild();
  return {
    issuer,
    origin: srv.origin,
    users,
    addUser: (u) => void users.set(u.sub, u),
    async setClients(c) {
      clients = c;
      rebuild();
    },
    async rotateKeys(o = {}) {
      const fresh = await newSigningKey();
      keys = o.dropOld ? [fresh] : [fresh, ...keys];
      rebuild();
    },
    currentKid: () => String(keys[0]!.kid),
    close: () => srv.close(),
  };
}

export interface AzureLikeIdp {
  origin: string;
  /** What an admin enters: http://127.0.0.1:<port>/organizations/v2.0 */
  organizationsIssuer: string;
  /** The template the discovery document answers with. */
  issuerTemplate: string;
  tenantIssuer(tid: string): string;
  tenants: string[];
  users: Map<string, IdpUser>;
  /** Users of a tenant get tid and oid claims; sub is pairwise per app in Azure, here `${oid}-sub`. */
  addUser(tid: string, user: { oid: string; email?: string; name?: string; preferred_username?: string; groups?: string[]; extra?: Record<string, unknown> }): IdpUser;
  /** Which tenant's sign-in page /organizations/oauth2/v2.0/authorize sends the browser to (Azure picks the user's home tenant). */
  setActiveTenant(tid: string): void;
  setClients(clients: IdpClient[]): Promise<void>;
  close(): Promise<void>;
}

export async function startAzureLikeIdp(options: { tenants: string[]; clients?: IdpClient[] }): Promise<AzureLikeIdp> {
  const srv = await startSwappableServer();
  const template = `${srv.origin}/{tenantid}/v2.0`;
  const users = new Map<string, IdpUser>();
  const keys: JWK[] = [await newSigningKey()];
  let clients = options.clients ?? [];
  let active = options.tenants[0]!;
  let mounts: { prefix: string; handle: Handler }[] = [];
  const rebuild = () => {
    mounts = options.tenants.map((tid) => mount(`/${tid}/v2.0`, buildProvider(`${srv.origin}/${tid}/v2.0`, keys, clients, users)));
  };
  rebuild();
  // Azure's multi-tenant documents: issuer is the template, endpoints are the
  // multi-tenant ones; jwks are shared by all tenants.
  const multiTenantDocument = (segment: string) => ({
    issuer: template,
    authorization_endpoint: `${srv.origin}/${segment}/oauth2/v2.0/authorize`,
    token_endpoint: `${srv.origin}/${segment}/oauth2/v2.0/token`,
    jwks_uri: `${srv.origin}/${active}/v2.0/jwks`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'tid', 'oid', 'email', 'name', 'preferred_username'],
  });
  srv.setHandler((req, res) => {
    const url = new URL(req.url!, srv.origin);
    const mt = /^\/(organizations|common)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (mt) return sendJson(res, 200, multiTenantDocument(mt[1]!));
    const authz = /^\/(organizations|common)\/oauth2\/v2\.0\/authorize$/.exec(url.pathname);
    if (authz) {
      res.statusCode = 302;
      res.setHeader('location', `${srv.origin}/${active}/v2.0/auth${url.search}`);
      return res.end();
    }
    const m = mounts.find((x) => url.pathname.startsWith(x.prefix + '/'));
    if (m) return m.handle(req, res);
    sendJson(res, 404, { error: 'not_found' });
  });
  return {
    origin: srv.origin,
    organizationsIssuer: `${srv.origin}/organizations/v2.0`,
    issuerTemplate: template,
    tenantIssuer: (tid) => `${srv.origin}/${tid}/v2.0`,
    tenants: options.tenants,
    users,
    addUser(tid, u) {
      const user: IdpUser = {
        sub: `${u.oid}-sub`,
        ...(u.email ? { email: u.email } : {}),
        ...(u.name ? { name: u.name } : {}),
        ...(u.preferred_username ? { preferred_username: u.preferred_username } : {}),
        ...(u.groups ? { groups: u.groups } : {}),
        // Azure AD sends no email_verified (its email is an unverified attribute); xms_edov only as an optional claim.
        extra: { tid, oid: u.oid, email_verified: undefined, ...(u.extra ?? {}) },
      };
      users.set(user.sub, user);
      return user;
    },
    setActiveTenant(tid) {
      active = tid;
    },
    async setClients(c) {
      clients = c;
      rebuild();
    },
    close: () => srv.close(),
  };
}
