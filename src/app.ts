import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config.ts';
import { ThreadInvalidationTransport } from './auth/thread-invalidation.ts';
import { closeCore, createCore, createWiredSso } from './core.ts';
import type { Core } from './core.ts';
import { createGateway } from './gateway/gateway.ts';
import type { Gateway } from './gateway/gateway.ts';
import { createHealthHandlers } from './health/health.handlers.ts';
import { AddressList } from './http/client-ip.ts';
import type { TrustedProxies } from './http/client-ip.ts';
import { requestIdOf } from './http/raw-response.ts';
import { createDispatcher, createHttpServer } from './http/server.ts';
import type { RequestHandler } from './http/server.ts';
import type { Logger } from './log/logger.ts';
import { BodyIntake, admitAll, authenticateManagementBodies, authenticateScimBodies } from './management/body-intake.ts';
import { ScimTokensService } from './scim/scim-tokens.service.ts';
import type { ManagementApp } from './management/management-app.ts';
import { ManagementWorker, invalidationChannelName } from './management/management-worker.ts';
import { Metrics } from './metrics/metrics.ts';
import type { Sso } from './sso/index.ts';

export { VERSION } from './version.ts';
export { closeCore, createCore } from './core.ts';
export type { Core } from './core.ts';

export interface Trackgate {
  core: Core;
  server: Server;
  /** The management worker, when the management API runs in one (the default). */
  management: ManagementWorker | null;
  listen(): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
}

export async function createTrackgate(config: Config, options: { logger?: Logger } = {}): Promise<Trackgate> {
  // One name for this instance, in both isolates: its invalidation channel between them, and its origin on Redis.
  const instance = invalidationChannelName();
  const core = await createCore(config, { ...options, instanceId: instance });
  const { logger } = core;
  let sso: Sso | null = null;
  let gateway: Gateway | null = null;
  let management: ManagementWorker | null = null;
  let inline: ManagementApp | null = null;
  let metrics: Metrics;
  let handleManagement: RequestHandler;
  // The management API, pages and SSO run in a worker of their own unless told otherwise (an
  // in-memory SQLite database cannot be shared with a worker): see src/management/worker.ts.
  const isolated = config.managementIsolate === 'worker' && config.databaseUrl !== 'sqlite::memory:';
  try {
    sso = createWiredSso(core, { servesSso: !isolated });
    // The hot paths, served before Express: /auth/verify, /.well-known/jwks.json, and the reverse proxy.
    gateway = await createGateway({ ...core, attribute: core.serviceAccounts.attribute });
    metrics = new Metrics(
      {
        key_cache_entries: { help: 'API keys (and recent misses) held in the in-process verification cache', read: () => core.keyVerifier.size },
        invalidation_poll_age_seconds: { help: 'Seconds since the hot paths\' isolate last read the invalidation log (polled every TRACKGATE_INVALIDATION_POLL_MS)', read: () => core.invalidationPoller.ageSeconds() },
        // Only with Redis: without it there is no channel to be down, and a constant 1 would claim one.
        ...(core.redis ? { invalidation_channel_up: { help: '1 while this instance hears the Redis invalidation channel (its own pings come back), else 0', read: () => (core.invalidator.channel() === 'down' ? 0 : 1) } } : {}),
        // Read at each scrape: an alert on its increase sees a crashing worker (its 503s come from this isolate, not counted by it).
        management_worker_restarts: { help: 'Times the management worker died and was started again since the process started', read: () => management?.restarts ?? 0 },
      },
      { process: true, requests: !isolated },
    );
    // Bodies are read only after their credentials are checked: the management API's, and SCIM's token.
    const admit = admitAll(authenticateManagementBodies(core.authenticator, core.trustedProxies), authenticateScimBodies(new ScimTokensService(core.store, core.access, core.audit), core.trustedProxies));
    if (isolated) {
      core.invalidator.attach(new ThreadInvalidationTransport(instance));
      management = await ManagementWorker.start(config, instance, logger, { admit });
      handleManagement = management.handler;
    } else {
      // Loaded only here: the main isolate of the default setup has no use for the Express application.
      const { createManagementApp } = await import('./management/management-app.ts');
      inline = createManagementApp(core, sso, metrics);
      handleManagement = guarded(inline.app, core.trustedProxies, new BodyIntake({ timeoutMs: config.managementBodyTimeoutMs, admit, logger }));
    }
  } catch (err) {
    await gateway?.close();
    await sso?.close();
    await closeCore(core);
    throw err;
  }
  const worker = management;

  // Health probes and metrics scrapes are lean too: they never pass through Express (see health.handlers.ts).
  const lean = new Map([...gateway.lean, ...createHealthHandlers(core), ['/metrics', metrics.handler(new AddressList(config.metricsAllow, 'metricsAllow'), core.trustedProxies, worker ? () => worker.metricsText() : undefined)]]);
  // Every request's head is bounded in time; bodies only on the management plane (a proxied upload may take long).
  const server = createHttpServer(createDispatcher({ lean, leanPrefixes: gateway.leanPrefixes, proxy: gateway.proxy, app: handleManagement }), { headersTimeoutMs: config.requestHeadersTimeoutMs });
  core.lastUsed.start();
  let closing: Promise<void> | null = null;

  return {
    core,
    server,
    management: worker,
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
        await worker?.close();
        await gateway.close();
        inline?.close();
        await sso.close();
        await closeCore(core);
      })()),
  };
}

/** The inline Express application behind the same admission and body deadline as the worker's requests. */
function guarded(app: RequestHandler, trustedProxies: TrustedProxies, intake: BodyIntake): RequestHandler {
  return (req, res) => intake.guard(req, res, requestIdOf(req, trustedProxies), () => app(req, res));
}
