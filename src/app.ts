import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config.ts';
import { AuditService } from './audit/audit.service.ts';
import { registerAuditRoutes } from './audit/audit.routes.ts';
import { Authenticator } from './auth/authenticator.ts';
import { CacheInvalidator } from './auth/invalidation.ts';
import { SecretBox, resolveSecretKey } from './crypto/secret-box.ts';
import { migrateToLatest, openDatabase } from './db/database.ts';
import type { Database } from './db/database.ts';
import { Store } from './db/store.ts';
import { ApiRouter } from './http/api-router.ts';
import { TrustedProxies } from './http/client-ip.ts';
import { createExpressApp, createRequireAuth } from './http/express-app.ts';
import { buildOpenApi } from './http/openapi.ts';
import { createDispatcher, createHttpServer } from './http/server.ts';
import { KeyVerifier } from './keys/key-verifier.ts';
import { KeysService } from './keys/keys.service.ts';
import { registerKeyRoutes } from './keys/keys.routes.ts';
import { LastUsedRecorder } from './keys/last-used.ts';
import { createLogger } from './log/logger.ts';
import type { Logger } from './log/logger.ts';
import { OrgAccess } from './orgs/org-access.ts';
import { OrgsService } from './orgs/orgs.service.ts';
import { registerOrgRoutes } from './orgs/orgs.routes.ts';
import { TeamsService } from './teams/teams.service.ts';
import { registerTeamRoutes } from './teams/teams.routes.ts';
import { UsersService } from './users/users.service.ts';
import { registerUserRoutes } from './users/users.routes.ts';
import { createHealthHandlers } from './health/health.handlers.ts';
import type { ReadinessCheck } from './health/health.handlers.ts';
import { Metrics } from './metrics/metrics.ts';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { RedisInvalidationTransport } from './auth/redis-invalidation.ts';
import { closeRedis, createRedis } from './redis/redis.ts';
import { createSso } from './sso/index.ts';
// gateway and service accounts (issue 3)
import { createGateway } from './gateway/gateway.ts';
import { ServiceAccountsService } from './service-accounts/service-accounts.service.ts';
import { registerServiceAccountRoutes } from './service-accounts/service-accounts.routes.ts';
// web pages (issue 5)
import { createWeb } from './web/index.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Everything the running service is made of. Built once here — the only place
 * where features are wired together — and handed to routes, the CLI and tests.
 */
export interface Core {
  config: Config;
  logger: Logger;
  database: Database;
  store: Store;
  secretBox: SecretBox;
  invalidator: CacheInvalidator;
  trustedProxies: TrustedProxies;
  audit: AuditService;
  access: OrgAccess;
  orgs: OrgsService;
  users: UsersService;
  teams: TeamsService;
  keys: KeysService;
  serviceAccounts: ServiceAccountsService;
  keyVerifier: KeyVerifier;
  lastUsed: LastUsedRecorder;
  authenticator: Authenticator;
  /** The shared Redis connection when TRACKGATE_REDIS_URL is set. */
  redis: Redis | null;
  /** Extra checks of /readyz beyond the database. */
  readinessChecks: ReadinessCheck[];
}

/** Opens the database, applies migrations and builds the services (no HTTP). The CLI uses this alone. */
export async function createCore(config: Config, options: { logger?: Logger } = {}): Promise<Core> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, file: config.logFile });
  const database = openDatabase(config.databaseUrl);
  try {
    await migrateToLatest(database);
  } catch (err) {
    await database.close();
    throw err;
  }
  const store = new Store(database.db);
  const secretBox = new SecretBox(resolveSecretKey(config.secretKey, config.dataDir));
  const invalidator = new CacheInvalidator();
  const audit = new AuditService();
  const access = new OrgAccess(store);
  const orgs = new OrgsService(store, access, audit, invalidator);
  const users = new UsersService(store, access, audit, invalidator);
  const teams = new TeamsService(store, access, audit, invalidator);
  const keys = new KeysService(store, access, audit, invalidator);
  const lastUsed = new LastUsedRecorder(store.repos.keys, config.lastUsedFlushMs, logger);
  const keyVerifier = new KeyVerifier(store.repos.keys, lastUsed, invalidator, {
    ttlMs: config.keyCacheTtlSeconds * 1000,
    negativeTtlMs: config.keyNegativeCacheTtlSeconds * 1000,
    maxEntries: config.keyCacheMaxEntries,
  });
  keyVerifier.registerOwnerLoader('user', users.keyOwnerLoader);
  // Service accounts (issue 3): their keys' owners, and who may manage those keys.
  const serviceAccounts = new ServiceAccountsService(store, access, teams, keys, audit, invalidator);
  keyVerifier.registerOwnerLoader('service_account', serviceAccounts.keyOwnerLoader);
  keys.registerManagePolicy('service_account', serviceAccounts.keyManagePolicy);
  // With Redis, failed-authentication counts and cache invalidations are shared by every instance.
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger, 'trackgate') : null;
  if (redis && config.redisUrl) {
    invalidator.attach(new RedisInvalidationTransport(redis, createRedis(config.redisUrl, logger, 'trackgate-sub'), `${config.redisKeyPrefix}invalidate`, logger));
  }
  const failureLimits = { points: config.authFailureLimit, duration: config.authFailureWindowSeconds };
  const limiter = redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `${config.redisKeyPrefix}authfail`, ...failureLimits, insuranceLimiter: new RateLimiterMemory(failureLimits) })
    : new RateLimiterMemory(failureLimits);
  const authenticator = new Authenticator(keyVerifier, { failureLimit: config.authFailureLimit, failureWindowSeconds: config.authFailureWindowSeconds, limiter });
  const readinessChecks: ReadinessCheck[] = [{ name: 'database', check: () => database.ping() }];
  if (redis) readinessChecks.push({ name: 'redis', check: async () => void (await redis.ping()) });
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  return { config, logger, database, store, secretBox, invalidator, trustedProxies, audit, access, orgs, users, teams, keys, serviceAccounts, keyVerifier, lastUsed, authenticator, redis, readinessChecks };
}

export async function closeCore(core: Core): Promise<void> {
  await core.lastUsed.stop();
  await core.invalidator.close();
  await closeRedis(core.redis);
  await core.database.close();
}

export interface Trackgate {
  core: Core;
  server: Server;
  listen(): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
}

export async function createTrackgate(config: Config, options: { logger?: Logger } = {}): Promise<Trackgate> {
  const core = await createCore(config, options);
  const { logger } = core;
  // SSO first: its sessions authenticate browsers everywhere, and its CSRF check guards cookie-authenticated writes.
  const sso = createSso(core);
  core.authenticator.useSessions(sso.sessionAuthenticator);
  const api = new ApiRouter(createRequireAuth(core.authenticator, () => sso.csrf));

  // Management API: organizations, users, teams, keys, audit, service accounts, SSO connections.
  registerOrgRoutes(api, core.orgs);
  registerUserRoutes(api, core.users);
  registerTeamRoutes(api, core.teams);
  registerKeyRoutes(api, core.keys);
  registerAuditRoutes(api, { store: core.store, access: core.access });
  registerServiceAccountRoutes(api, core.serviceAccounts);
  sso.registerApi(api);

  // The hot paths, served before Express: /auth/verify, /.well-known/jwks.json, and the reverse proxy.
  const gateway = await createGateway({ ...core, attribute: core.serviceAccounts.attribute });

  // Browser pages: /login (SSO), /settings, /teams/:team, /admin, one-time login links.
  core.orgs.useSsoAvailability((orgId) => sso.service.hasEnabledConnection(orgId));
  const web = createWeb({ ...core, sso });
  const pageRouters = [sso.router, web.router];

  const metrics = new Metrics({
    key_cache_entries: { help: 'API keys (and recent misses) held in the in-process verification cache', read: () => core.keyVerifier.size },
  });
  const openapi = buildOpenApi('/gateway/v1', api.specs, { version: VERSION, publicUrl: config.publicUrl });
  const app = createExpressApp({
    logger,
    trustedProxies: core.trustedProxies,
    mount: (a) => {
      a.use(metrics.middleware());
      a.get('/gateway/v1/openapi.json', (_req, res) => {
        res.json(openapi);
      });
      a.use('/gateway/v1', api.router);
      for (const r of pageRouters) a.use(r);
    },
  });

  // Health probes and metrics scrapes are lean too: they never pass through Express (see health.handlers.ts).
  const lean = new Map([...gateway.lean, ...createHealthHandlers(core), ['/metrics', metrics.handler(core.trustedProxies)]]);
  const server = createHttpServer(createDispatcher({ lean, proxy: gateway.proxy, app }));
  core.lastUsed.start();
  let closing: Promise<void> | null = null;

  return {
    core,
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const port = (server.address() as AddressInfo).port;
          const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
          resolve({ port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}` });
        });
      }),
    close: () =>
      (closing ??= (async () => {
        // Stop accepting, let in-flight requests finish, then drop idle keep-alive connections.
        if (server.listening) {
          const done = new Promise<void>((resolve) => server.close(() => resolve()));
          server.closeIdleConnections();
          // Connections that finish a response while shutting down are closed instead of kept alive.
          const idle = setInterval(() => server.closeIdleConnections(), 100);
          const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
          await done;
          clearInterval(idle);
          clearTimeout(timer);
        }
        await gateway.close();
        web.close();
        await sso.close();
        await closeCore(core);
      })()),
  };
}
