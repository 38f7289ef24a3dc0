import { randomUUID } from 'node:crypto';
import type { Config } from './config/config.ts';
import { AuditService } from './audit/audit.service.ts';
import { Authenticator } from './auth/authenticator.ts';
import { CacheInvalidator } from './auth/invalidation.ts';
import { InvalidationPoller } from './auth/invalidation-poller.ts';
import { RedisInvalidationTransport } from './auth/redis-invalidation.ts';
import { SecretBox, resolveSecretKey } from './crypto/secret-box.ts';
import { migrateToLatest, openDatabase } from './db/database.ts';
import type { Database } from './db/database.ts';
import type { Store } from './db/store.ts';
import { tightenDataFiles } from './db/private-files.ts';
import { FederatedCredentialsService } from './federation/federated-credentials.service.ts';
import type { ReadinessCheck } from './health/health.handlers.ts';
import { TrustedProxies } from './http/client-ip.ts';
import { accessTokenSource, FederationPruner } from './federation/access-token-source.ts';
import { KeyVerifier } from './keys/key-verifier.ts';
import { KeysService } from './keys/keys.service.ts';
import { LastUsedRecorder } from './keys/last-used.ts';
import { CREDENTIAL_PREFIXES } from './keys/key-format.ts';
import { createLogger } from './log/logger.ts';
import type { Logger } from './log/logger.ts';
import { OrgAccess } from './orgs/org-access.ts';
import { OrgsService } from './orgs/orgs.service.ts';
import { RedisKeyspace } from './redis/keyspace.ts';
import { closeRedis, createRedis } from './redis/redis.ts';
import { ServiceAccountsService } from './service-accounts/service-accounts.service.ts';
import { createSso } from './sso/index.ts';
import type { Sso } from './sso/index.ts';
import type { TransactionStore } from './sso/login-transactions.ts';
import { sessionTimeouts } from './sso/session-store.ts';
import type { TrackgateSessionStore } from './sso/session-store.ts';
import { createSessionStorage, createStore } from './storage.ts';
import type { DB, Repositories } from './storage.ts';
import { TeamsService } from './teams/teams.service.ts';
import { UsersService } from './users/users.service.ts';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

/**
 * Everything the running service is made of, without HTTP. Built here and
 * handed to routes, the CLI, the management worker and tests; the HTTP side is
 * wired in src/app.ts (main thread) and src/management/ (the Express application).
 */
export interface Core {
  config: Config;
  logger: Logger;
  database: Database<DB>;
  /** Every repository, and transactions over them (src/storage.ts); each service is given it typed by the part it declared. */
  store: Store<Repositories>;
  /** Browser sessions and pending SSO logins: in Redis when configured, else in the database. */
  sessionStore: TrackgateSessionStore;
  loginTransactions: TransactionStore;
  secretBox: SecretBox;
  invalidator: CacheInvalidator;
  /** Reads the database's invalidation log: what the transports lost reaches this isolate within TRACKGATE_INVALIDATION_POLL_MS. */
  invalidationPoller: InvalidationPoller;
  trustedProxies: TrustedProxies;
  audit: AuditService;
  access: OrgAccess;
  orgs: OrgsService;
  users: UsersService;
  teams: TeamsService;
  keys: KeysService;
  serviceAccounts: ServiceAccountsService;
  /** Trust rules of service accounts (workload federation, issue 17). */
  federatedCredentials: FederatedCredentialsService;
  keyVerifier: KeyVerifier;
  lastUsed: LastUsedRecorder;
  authenticator: Authenticator;
  /** The shared Redis connection when TRACKGATE_REDIS_URL is set. */
  redis: Redis | null;
  /** Every Redis key and channel name, under TRACKGATE_REDIS_KEY_PREFIX (also without Redis: it costs nothing). */
  redisKeyspace: RedisKeyspace;
  /** Extra checks of /readyz beyond the database. */
  readinessChecks: ReadinessCheck[];
  /** Expired federation access tokens and replay records, pruned by the isolate that migrates (null in the others). */
  federationPruner: FederationPruner | null;
}

/**
 * Opens the database, applies migrations (unless `migrate` is false: the management worker starts after
 * the main isolate applied them) and builds the services (no HTTP). The CLI uses this alone.
 */
export async function createCore(config: Config, options: { logger?: Logger; migrate?: boolean; instanceId?: string } = {}): Promise<Core> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, file: config.logFile });
  const database = openDatabase<DB>(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs });
  if (options.migrate !== false) {
    try {
      await migrateToLatest(database);
    } catch (err) {
      await database.close();
      throw err;
    }
  }
  const store = createStore(database.db);
  const secret = resolveSecretKey(config.secretKey, config.dataDir);
  const secretBox = new SecretBox(secret.key, secret.source);
  // Files and folders an older version left readable by others: once, in the isolate that migrates (not again in the worker).
  if (options.migrate !== false) tightenDataFiles({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, secretKeyConfigured: Boolean(config.secretKey) }, logger);
  const invalidator = new CacheInvalidator();
  const audit = new AuditService();
  const access = new OrgAccess(store);
  const orgs = new OrgsService(store, access, audit, invalidator);
  const users = new UsersService(store, access, audit, invalidator);
  const teams = new TeamsService(store, access, audit, invalidator);
  const keys = new KeysService(store, access, audit, invalidator, { maxKeysPerPrincipal: config.maxKeysPerPrincipal });
  const lastUsed = new LastUsedRecorder(store.repos.keys, config.lastUsedFlushMs, logger);
  const keyVerifier = new KeyVerifier(store.repos.keys, lastUsed, invalidator, {
    ttlMs: config.keyCacheTtlSeconds * 1000,
    negativeTtlMs: config.keyNegativeCacheTtlSeconds * 1000,
    maxEntries: config.keyCacheMaxEntries,
    staleMs: config.keyCacheStaleSeconds * 1000,
  });
  keyVerifier.registerOwnerLoader('user', users.keyOwnerLoader);
  // Service accounts (issue 3): their keys' owners, and who may manage those keys.
  const serviceAccounts = new ServiceAccountsService(store, access, teams, keys, audit, invalidator);
  keyVerifier.registerOwnerLoader('service_account', serviceAccounts.keyOwnerLoader);
  keys.registerManagePolicy('service_account', serviceAccounts.keyManagePolicy);
  const federatedCredentials = new FederatedCredentialsService(store, serviceAccounts, audit, invalidator, { allowHttpIssuers: config.allowHttpIssuers });
  // Workload federation's access tokens (tga-…) ride the API key path: same cache, revocation and invalidation.
  keyVerifier.registerSource(CREDENTIAL_PREFIXES.access_token, accessTokenSource(store.repos, (orgId, id) => serviceAccounts.principalFor(orgId, id, { via: 'access_token', keyId: null })));
  // With Redis, failed-authentication counts and cache invalidations are shared by every instance. While
  // Redis is down the insurance limiter counts in memory at once (rejectIfRedisNotReady): a 401 never waits for Redis.
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger, 'trackgate', { commandTimeoutMs: config.redisTimeoutMs }) : null;
  const redisKeyspace = new RedisKeyspace(config.redisKeyPrefix);
  if (redis && config.redisUrl) {
    const subscriber = createRedis(config.redisUrl, logger, 'trackgate-sub');
    invalidator.attach(new RedisInvalidationTransport(options.instanceId ?? randomUUID(), redis, subscriber, redisKeyspace.invalidationChannel, logger, { pollMs: config.invalidationPollMs }));
  }
  // Every isolate polls; the one that migrates (the main isolate, or the CLI) also prunes the log now and then.
  const invalidationPoller = new InvalidationPoller(store.repos.invalidations, invalidator, logger, { intervalMs: config.invalidationPollMs, prune: options.migrate !== false });
  const failureLimits = { points: config.authFailureLimit, duration: config.authFailureWindowSeconds };
  const limiter = redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix: redisKeyspace.authFailures, ...failureLimits, insuranceLimiter: new RateLimiterMemory(failureLimits), rejectIfRedisNotReady: true })
    : new RateLimiterMemory(failureLimits);
  const authenticator = new Authenticator(keyVerifier, { failureLimit: config.authFailureLimit, failureWindowSeconds: config.authFailureWindowSeconds, limiter });
  // Without the database nothing can be served (503); without Redis the instance works with less (degraded):
  // sessions and shared limits fail over as each says, and revocations arrive through the poll.
  const readinessChecks: ReadinessCheck[] = [{ name: 'database', required: true, check: () => database.ping().then(() => 'ok') }];
  if (redis) {
    readinessChecks.push({
      name: 'redis',
      required: false,
      check: async () => {
        // Not queued behind reconnection attempts: a probe wants the answer now.
        if (redis.status !== 'ready') throw new Error(`redis connection ${redis.status}`);
        await redis.ping();
        return 'ok';
      },
    });
  }
  readinessChecks.push(
    { name: 'invalidation_channel', required: false, check: () => Promise.resolve(({ up: 'ok', down: 'down', none: 'none' } as const)[invalidator.channel()]) },
    { name: 'invalidation_poll', required: false, check: () => Promise.resolve(invalidationPoller.late() ? 'late' : 'ok') },
  );
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  const { sessions: sessionStore, loginTransactions } = createSessionStorage(database.db, redis && { client: redis, keyspace: redisKeyspace }, {
    timeouts: sessionTimeouts(config),
    maxPendingPerBrowser: config.loginMaxPendingPerBrowser,
  });
  await invalidationPoller.start();
  const federationPruner = options.migrate !== false ? new FederationPruner(store, logger) : null;
  federationPruner?.start();
  return { federationPruner, config, logger, database, store, sessionStore, loginTransactions, redisKeyspace, secretBox, invalidator, invalidationPoller, trustedProxies, audit, access, orgs, users, teams, keys, serviceAccounts, federatedCredentials, keyVerifier, lastUsed, authenticator, redis, readinessChecks };
}

export async function closeCore(core: Core): Promise<void> {
  await core.federationPruner?.stop();
  await core.invalidationPoller.stop();
  await core.lastUsed.stop();
  await core.invalidator.close();
  await closeRedis(core.redis);
  await core.database.close();
}

/**
 * SSO wired into the core: its sessions authenticate browsers everywhere (with CSRF on cookie-authenticated
 * writes), and organizations learn whether SSO is on. `servesSso`: whether this isolate serves the SSO
 * pages (and so sweeps expired logins and sessions); the main isolate next to a management worker only
 * reads sessions.
 */
export function createWiredSso(core: Core, options: { servesSso: boolean }): Sso {
  const sso = createSso(core, { sweep: options.servesSso });
  core.authenticator.useSessions(sso.sessionAuthenticator);
  core.orgs.useSsoAvailability((orgId) => sso.service.hasEnabledConnection(orgId));
  core.users.useSessionEnder((userId) => core.sessionStore.destroyAllOfUser(userId));
  return sso;
}
