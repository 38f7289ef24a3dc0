import type { ErrorRequestHandler, Router } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { AuditService } from '../audit/audit.service.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../db/store.ts';
import type { Logger } from '../log/logger.ts';
import type { RedisKeyspace } from '../redis/keyspace.ts';
import type { IdpFetcher } from '../sso/oidc/idp-fetch.ts';
import type { JwksRegistry } from '../sso/oidc/jwks.ts';
import { createOidcRouter, oidcBodyErrors } from './oidc-token.routes.ts';
import { TokenExchangeService } from './token-exchange.service.ts';
import type { TokenExchangeRepos } from './token-exchange.service.ts';
import { WorkloadIssuers } from './workload-issuers.ts';

export { OIDC_PREFIX, oidcBodyLimit } from './oidc-token.routes.ts';

export interface FederationDeps {
  config: Config;
  logger: Logger;
  store: Store<TokenExchangeRepos>;
  audit: AuditService;
  redis: Redis | null;
  redisKeyspace: RedisKeyspace;
  /** SSO's one fetcher and one JWKS cache (src/sso/index.ts): workload issuers are fetched like IdPs. */
  sso: { fetcher: IdpFetcher; jwks: JwksRegistry };
}

export interface Federation {
  exchange: TokenExchangeService;
  /** POST /oidc/token, to mount at OIDC_PREFIX; `bodyErrors` after it (the form parser's refusals in RFC 6749's words). */
  router: Router;
  bodyErrors: ErrorRequestHandler;
}

/** Builds workload federation's token endpoint on the storage composed in src/storage.ts. */
export function createFederation(deps: FederationDeps): Federation {
  const { config, logger, redis } = deps;
  const issuers = new WorkloadIssuers(deps.sso.fetcher, deps.sso.jwks, logger, { allowHttp: config.allowHttpIssuers });
  // Refused exchanges are counted per address like failed authentications (same limit and window): each may
  // have cost a fetch and a signature check. Shared in Redis when configured; in memory at once while it is down.
  const limits = { points: config.authFailureLimit, duration: config.authFailureWindowSeconds };
  const failures = redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix: deps.redisKeyspace.exchangeFailures, ...limits, insuranceLimiter: new RateLimiterMemory(limits), rejectIfRedisNotReady: true })
    : new RateLimiterMemory(limits);
  const exchange = new TokenExchangeService(deps.store, issuers, deps.audit, logger, failures, {
    accessTokenTtlSeconds: config.federationAccessTokenTtlSeconds,
    maxAssertionLifetimeSeconds: config.federationMaxAssertionLifetimeSeconds,
    clockToleranceSeconds: config.federationClockToleranceSeconds,
  });
  return { exchange, router: createOidcRouter(exchange), bodyErrors: oidcBodyErrors };
}
