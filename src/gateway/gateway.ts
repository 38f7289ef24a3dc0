import type { IncomingMessage } from 'node:http';
import { AssertionIssuer } from '../assertions/assertion-issuer.ts';
import { createJwksHandler } from '../assertions/jwks.handler.ts';
import type { SigningKeysRepository } from '../assertions/signing-keys.repository.ts';
import { SigningKeyService } from '../assertions/signing-keys.service.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Store } from '../db/store.ts';
import type { TrustedProxies } from '../http/client-ip.ts';
import type { RequestHandler } from '../http/server.ts';
import type { Logger } from '../log/logger.ts';
import { GatewayIdentity } from './identity.ts';
import type { Attributor } from './identity.ts';
import { createProxy } from './proxy.ts';
import { VERIFY_PREFIX, createVerifyHandler } from './verify.ts';

export interface GatewayDeps {
  config: Config;
  logger: Logger;
  store: Store<{ signingKeys: SigningKeysRepository }>;
  secretBox: SecretBox;
  authenticator: Authenticator;
  trustedProxies: TrustedProxies;
  /** Resolves X-WANDB-USERNAME for service-account keys (the service-accounts feature). */
  attribute: Attributor | null;
}

export interface Gateway {
  /** Lean handlers by exact path: /auth/verify and /.well-known/jwks.json. */
  lean: Map<string, RequestHandler>;
  /** Lean handlers by path prefix: /auth/verify/<the original path> (Envoy ext_authz's path_prefix). */
  leanPrefixes: Array<readonly [string, RequestHandler]>;
  /** The reverse proxy, when an upstream is configured. */
  proxy: RequestHandler | null;
  signingKeys: SigningKeyService;
  identity: GatewayIdentity;
  close(): Promise<void>;
}

/**
 * Builds the hot paths: forward auth, the JWKS of the identity assertions and
 * the reverse proxy. Loads (or makes, on first start) the assertion signing
 * keys before anything is served.
 */
export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, logger, authenticator, trustedProxies } = deps;
  const signingKeys = new SigningKeyService(deps.store.repos.signingKeys, deps.secretBox, { rotationMs: config.signingKeyRotationDays * 86_400_000 }, logger);
  await signingKeys.start();
  const issuer = new AssertionIssuer(signingKeys, {
    issuer: config.publicUrl,
    audience: config.assertionAudience ?? config.upstreamUrl ?? config.publicUrl,
    ttlSeconds: config.assertionTtlSeconds,
  });
  const identity = new GatewayIdentity(
    {
      authenticate: (req: IncomingMessage, options: { allowSession: boolean }) => authenticator.authenticate(req, trustedProxies.clientIp(req), options),
      cached: (req: IncomingMessage, options: { allowSession: boolean }) => authenticator.authenticateCached(req, options),
    },
    issuer,
    deps.attribute,
    { plainHeaders: config.identityHeaders === 'plain-and-assertion' },
  );
  const verify = createVerifyHandler({ identity, trustedProxies, publicUrl: config.publicUrl, logger });
  const lean = new Map<string, RequestHandler>([
    ['/auth/verify', verify],
    ['/.well-known/jwks.json', createJwksHandler(signingKeys, trustedProxies)],
  ]);
  const proxy = config.upstreamUrl
    ? createProxy({ upstreamUrl: config.upstreamUrl, timeoutMs: config.upstreamTimeoutMs, connections: config.upstreamConnections, identity, trustedProxies, publicUrl: config.publicUrl, logger })
    : null;
  return {
    lean,
    leanPrefixes: [[VERIFY_PREFIX, verify]],
    proxy: proxy?.handler ?? null,
    signingKeys,
    identity,
    close: async () => {
      signingKeys.stop();
      await proxy?.close();
    },
  };
}
