import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { Router } from 'express';
import type { Redis } from 'ioredis';
import type { AuditService } from '../audit/audit.service.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { Principal } from '../auth/principal.ts';
import type { Config } from '../config/config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import type { CsrfVerifier } from '../http/csrf.ts';
import type { ApiRouter } from '../http/api-router.ts';
import type { Logger } from '../log/logger.ts';
import type { OrgAccess } from '../orgs/org-access.ts';
import type { RedisKeyspace } from '../redis/keyspace.ts';
import type { UsersService } from '../users/users.service.ts';
import type { TransactionStore } from './login-transactions.ts';
import { createLoginRouter } from './login.routes.ts';
import { LoginStartLimiter } from './login-guard.ts';
import { IdpFetcher } from './oidc/idp-fetch.ts';
import { JwksRegistry } from './oidc/jwks.ts';
import { SessionManager, sessionTimeouts } from './session-store.ts';
import type { TrackgateSessionStore } from './session-store.ts';
import { SsoLoginService } from './sso-login.service.ts';
import { registerSsoRoutes } from './sso.routes.ts';
import { SsoService } from './sso.service.ts';
import type { SsoRepos } from './sso.service.ts';
import { IdentitiesService } from './identities.service.ts';
import { createAuthenticator } from './passport/authenticator.ts';
import { ConnectionStrategies } from './passport/connection-strategies.ts';
import { SamlLogins } from './saml/saml-login.ts';
import { createSamlRouter } from './saml/saml.routes.ts';
import { OidcStrategy } from './passport/oidc-strategy.ts';
import type { SsoStrategyConnection } from './passport/connection-strategies.ts';

export interface SsoDeps {
  config: Config;
  logger: Logger;
  store: Store<SsoRepos>;
  secretBox: SecretBox;
  audit: AuditService;
  access: OrgAccess;
  users: UsersService;
  invalidator: CacheInvalidator;
  /** The shared Redis connection when TRACKGATE_REDIS_URL is set (the login start limit), and its keyspace. */
  redis: Redis | null;
  redisKeyspace: RedisKeyspace;
  /** Sessions and pending logins, in Redis or the database (src/storage.ts). */
  sessionStore: TrackgateSessionStore;
  loginTransactions: TransactionStore;
}

export interface Sso {
  service: SsoService;
  login: SsoLoginService;
  identities: IdentitiesService;
  sessions: SessionManager;
  /** The Passport strategy of each SSO connection, made by the kind's factory (OIDC, SAML). */
  strategies: ConnectionStrategies;
  /** GET /login, GET|POST /login/callback, POST /logout, /static/sso/*; GET /login/saml/:id/metadata, POST /login/saml/:id/acs. */
  router: Router;
  /** SAML 2.0 sign-ins: their strategies, starts and SP metadata. */
  saml: SamlLogins;
  /** /gateway/v1/orgs/:org/sso..., /gateway/v1/session. */
  registerApi(api: ApiRouter): void;
  /** For Authenticator.useSessions: the browser session's principal. */
  sessionAuthenticator: (req: IncomingMessage) => Promise<Principal | null>;
  /** For the management API's cookie-authenticated writes. */
  csrf: CsrfVerifier;
  /**
   * The one fetcher of documents from outside (bounded, JSON only, public addresses only) and the one JWKS
   * cache: workload federation (src/federation) and secret scanning (its scanner's public keys) use them too.
   */
  fetcher: IdpFetcher;
  jwks: JwksRegistry;
  close(): Promise<void>;
}

/** Builds the SSO feature: services, routes, the session hook, on the storage composed in src/storage.ts. */
export function createSso(deps: SsoDeps, options: { sweep?: boolean } = {}): Sso {
  const { config, logger, store } = deps;
  const timeouts = sessionTimeouts(config);
  const { redis, sessionStore, loginTransactions: transactions } = deps;
  const secure = config.publicUrl.startsWith('https://');
  // One Passport per app (not the module's global one): req.login / req.logout on the session, one strategy per connection.
  const authenticator = createAuthenticator();
  const strategies = new ConnectionStrategies(authenticator);
  const sessions = new SessionManager({ store: sessionStore, secret: deps.secretBox.derive('session-cookie').toString('base64url'), timeouts, secure, authenticator });
  // One fetcher for every request to an IdP: bounded answers, public addresses only (unless allowHttpIssuers).
  const idp = new IdpFetcher({ allowPrivateAddresses: config.allowHttpIssuers, allowedNetworks: config.ssoAllowedNetworks, timeoutMs: config.ssoHttpTimeoutMs, logger });
  const jwks = new JwksRegistry({ cooldownSeconds: config.ssoJwksCooldownSeconds, maxAgeSeconds: config.ssoJwksMaxAgeSeconds, timeoutMs: config.ssoHttpTimeoutMs, fetcher: idp });
  const service = new SsoService(store, deps.access, deps.audit, deps.secretBox, config, logger, idp);
  const login = new SsoLoginService(store, service, deps.users, deps.audit, deps.invalidator, deps.secretBox, transactions, jwks, config, logger);
  const identities = new IdentitiesService(store, deps.access, deps.audit, deps.invalidator, (userId) => sessionStore.destroyAllOfUser(userId));
  // OIDC connections sign in through a strategy of their own, made per connection and settings version.
  // A test login's report is opened on the admin page, by the session that started it.
  strategies.registerKind<SsoStrategyConnection>('oidc', ({ id, connection }) => new OidcStrategy(ConnectionStrategies.nameOf(id), connection, login, (sealed) => `/admin/sso/test-report?r=${encodeURIComponent(sealed)}`));
  const saml = new SamlLogins({ sso: service, login, strategies, transactions, logger, transactionTtlSeconds: config.loginTransactionTtlSeconds, clockToleranceSeconds: config.ssoClockToleranceSeconds });
  const startLimiter = new LoginStartLimiter({ points: config.loginStartLimit, durationSeconds: config.loginStartWindowSeconds, redis, keyspace: deps.redisKeyspace });
  const loginRouter = createLoginRouter({
    login,
    saml,
    sessions,
    authenticator,
    strategies,
    logger,
    transactionTtlSeconds: config.loginTransactionTtlSeconds,
    allowHttpIssuers: config.allowHttpIssuers,
    secure,
    publicOrigin: new URL(config.publicUrl).origin,
    startLimiter,
    names: {
      orgSlug: async (orgId) => (await store.repos.orgs.findById(orgId))?.slug ?? null,
      user: async (orgId, userId) => {
        const [user, org] = await Promise.all([store.repos.users.findById(orgId, userId), store.repos.orgs.findById(orgId)]);
        return user && org ? { username: user.username, org: org.slug } : null;
      },
    },
  });

  const router = express.Router();
  router.use(loginRouter, createSamlRouter({ sso: service, saml, authenticator, sessions, logger }));

  // Expired transactions and sessions are swept every few minutes, by the isolate that serves SSO only.
  const sweep =
    options.sweep === false
      ? null
      : setInterval(() => {
          Promise.all([transactions.sweep(), sessionStore.deleteExpired()]).catch((err: unknown) => logger.warn({ err }, 'sso: sweeping expired logins and sessions failed'));
        }, 5 * 60_000);
  sweep?.unref();

  return {
    service,
    login,
    identities,
    sessions,
    strategies,
    router,
    saml,
    registerApi: (api) => registerSsoRoutes(api, service, sessions, identities),
    async sessionAuthenticator(req) {
      const s = await sessions.read(req);
      if (!s) return null;
      const principal = await deps.users.principalForUser(s.data.orgId, s.data.userId, 'session', null);
      if (!principal) return null;
      // require_sso: an organization that requires SSO accepts browser sessions made by its IdP only.
      if (s.data.method !== 'sso' && !principal.instanceAdmin) {
        const org = await store.repos.orgs.findById(s.data.orgId);
        if (!org || org.require_sso === 1) return null;
      }
      return principal;
    },
    csrf: { verify: (req) => sessions.verifyCsrf(req) },
    fetcher: idp,
    jwks,
    async close() {
      if (sweep) clearInterval(sweep);
      await idp.close().catch(() => {});
    },
  };
}
