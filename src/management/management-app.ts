import type { Express } from 'express';
import type { Core } from '../core.ts';
import { VERSION } from '../version.ts';
import { registerAuditRoutes } from '../audit/audit.routes.ts';
import { registerFederatedCredentialRoutes } from '../federation/federated-credentials.routes.ts';
import { ApiRouter } from '../http/api-router.ts';
import { createExpressApp, createRequireAuth } from '../http/express-app.ts';
import { buildOpenApi } from '../http/openapi.ts';
import { OIDC_PREFIX, createFederation, oidcBodyLimit } from '../federation/index.ts';
import { samlBodyLimit } from '../sso/saml/saml.routes.ts';
import { registerKeyRoutes } from '../keys/keys.routes.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { registerOrgRoutes } from '../orgs/orgs.routes.ts';
import { SCIM_PREFIX, createScim, scimBodyLimit } from '../scim/index.ts';
import { createSecretScanning, secretScanningRawBody } from '../secret-scanning/index.ts';
import { registerSecretScanningRoutes } from '../secret-scanning/secret-scanning.routes.ts';
import { registerServiceAccountRoutes } from '../service-accounts/service-accounts.routes.ts';
import type { Sso } from '../sso/index.ts';
import { registerTeamRoutes } from '../teams/teams.routes.ts';
import { registerUserRoutes } from '../users/users.routes.ts';
import { createWeb } from '../web/index.ts';

export interface ManagementApp {
  /** The management API under /gateway/v1, the browser pages and SSO, as one Express application. */
  app: Express;
  close(): void;
}

/**
 * Everything trackgate serves through Express: the management API
 * (organizations, users, teams, keys, audit, service accounts, SSO
 * connections, SCIM tokens), the browser pages, the SSO login and SCIM. It runs in the
 * management worker (or inline, see TRACKGATE_MANAGEMENT_ISOLATE).
 */
export function createManagementApp(core: Core, sso: Sso, metrics: Metrics): ManagementApp {
  const { config, logger } = core;
  const api = new ApiRouter(createRequireAuth(core.authenticator, () => sso.csrf), { validateResponses: config.validateResponses });
  registerOrgRoutes(api, core.orgs);
  registerUserRoutes(api, core.users);
  registerTeamRoutes(api, core.teams);
  registerKeyRoutes(api, core.keys);
  registerAuditRoutes(api, { store: core.store, access: core.access });
  registerServiceAccountRoutes(api, core.serviceAccounts);
  registerFederatedCredentialRoutes(api, core.federatedCredentials);
  sso.registerApi(api);
  // SCIM provisioning: /scim/v2 (the organization's IdP, with its SCIM token) and its tokens on the API.
  const scim = createScim({ ...core, endSessionsOf: (userId) => core.sessionStore.destroyAllOfUser(userId) });
  scim.registerApi(api);
  // Leaked credentials revoke themselves: a secret scanner's signed reports, and the notices the pages show.
  const secretScanning = createSecretScanning({ ...core, teams: core.teams, fetcher: sso.fetcher });
  registerSecretScanningRoutes(api, secretScanning);

  // Browser pages: /login (SSO), /settings, /teams/:team, /admin, one-time login links.
  const web = createWeb({ ...core, sso, scim: { tokens: scim.tokens, baseUrl: scim.baseUrl }, leakedCredentials: secretScanning });
  const pageRouters = [sso.router, web.router];
  // Workload identity federation: POST /oidc/token (RFC 7523), no credentials but the assertion.
  const federation = createFederation({ ...core, sso });

  const openapi = buildOpenApi('/gateway/v1', api.specs, { version: VERSION, publicUrl: config.publicUrl });
  const app = createExpressApp({
    logger,
    trustedProxies: core.trustedProxies,
    bodyLimits: [scimBodyLimit, oidcBodyLimit, samlBodyLimit],
    rawBodies: [secretScanningRawBody],
    mount: (a) => {
      a.use(metrics.middleware());
      a.get('/gateway/v1/openapi.json', (_req, res) => {
        res.json(openapi);
      });
      a.use('/gateway/v1', api.router);
      a.use(SCIM_PREFIX, scim.router);
      a.use(OIDC_PREFIX, federation.router, federation.bodyErrors);
      for (const r of pageRouters) a.use(r);
    },
  });
  return { app, close: () => web.close() };
}
