import { createHmac, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { sendJson, startSwappableServer } from './idp/http.ts';
import { newKey } from './idp/jose-idp.ts';

/**
 * A workload identity issuer on loopback, built with jose, shaped like the two people bring most:
 * - `github`: GitHub Actions' tokens (`sub repo:OWNER/REPO:ref:refs/heads/BRANCH`, `repository`,
 *   `repository_owner`, `ref`, `workflow_ref`, `job_workflow_ref`, `jti`, ~5 minutes), its JWKS at
 *   `{iss}/.well-known/jwks` as GitHub's discovery document says;
 * - `kubernetes`: projected service-account tokens (`sub system:serviceaccount:NS:NAME`, the
 *   `kubernetes.io` claim, an hour), discovery at the issuer and the JWKS at /openid/v1/jwks.
 * It mints honest tokens and the bad ones an attacker or a broken workload sends (alg none, HS256 keyed
 * with the public key, a key it does not publish, expired, not yet valid, too long-lived, no jti), and can
 * play down (503) or answer a wrong discovery document.
 */

export type WorkloadShape = 'github' | 'kubernetes';

export interface WorkloadMintOptions {
  /** Claims to set over the shape's defaults; `undefined` removes one. */
  claims?: Record<string, unknown>;
  /** Header {alg: "none"} and no signature. */
  algNone?: boolean;
  /** HS256 with the published public JWK (as JSON) as the HMAC secret: key confusion. */
  hs256WithPublicKey?: boolean;
  /** Signed by a key this issuer does not publish (with that key's own kid). */
  unknownKey?: boolean;
  /** exp this many seconds ago (iat before it, within the lifetime). */
  expiredSecondsAgo?: number;
  /** nbf (and iat) this many seconds ahead. */
  notBeforeInSeconds?: number;
  /** exp − iat, in seconds (the shape's own otherwise). */
  lifetimeSeconds?: number;
  /** No jti claim (older Kubernetes clusters send none). */
  noJti?: boolean;
}

export interface WorkloadIdp {
  shape: WorkloadShape;
  issuer: string;
  jwksUri: string;
  /** Every path requested, in order (to prove that nothing was fetched). */
  requests: string[];
  mint(audience: string, options?: WorkloadMintOptions): Promise<string>;
  /** Answer 503 to everything (an issuer that is down), or serve again. */
  setDown(down: boolean): void;
  /** Fields of the discovery document to override (undefined removes one). */
  setDiscovery(overrides: Record<string, unknown>): void;
  close(): Promise<void>;
}

export async function startWorkloadIdp(shape: WorkloadShape, options: { owner?: string; repo?: string; namespace?: string; serviceAccount?: string } = {}): Promise<WorkloadIdp> {
  const srv = await startSwappableServer();
  const issuer = srv.origin;
  const jwksPath = shape === 'github' ? '/.well-known/jwks' : '/openid/v1/jwks';
  const jwksUri = `${issuer}${jwksPath}`;
  const key = await newKey('wk');
  const requests: string[] = [];
  let down = false;
  let overrides: Record<string, unknown> = {};

  srv.setHandler((req, res) => {
    const path = new URL(req.url!, srv.origin).pathname;
    requests.push(path);
    if (down) return sendJson(res, 503, { message: 'unavailable' });
    if (path === '/.well-known/openid-configuration') {
      const doc: Record<string, unknown> =
        shape === 'github'
          ? {
              issuer,
              jwks_uri: jwksUri,
              subject_types_supported: ['public', 'pairwise'],
              response_types_supported: ['id_token'],
              claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'run_id', 'actor', 'workflow', 'workflow_ref', 'job_workflow_ref', 'environment'],
              id_token_signing_alg_values_supported: ['RS256'],
              scopes_supported: ['openid'],
            }
          : { issuer, jwks_uri: jwksUri, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] };
      for (const [k, v] of Object.entries(overrides)) {
        if (v === undefined) delete doc[k];
        else doc[k] = v;
      }
      return sendJson(res, 200, doc);
    }
    if (path === jwksPath) return sendJson(res, 200, { keys: [key.publicJwk] });
    sendJson(res, 404, { message: 'Not Found' });
  });

  const owner = options.owner ?? 'acme';
  const repo = options.repo ?? 'train';
  const ns = options.namespace ?? 'ml';
  const sa = options.serviceAccount ?? 'trainer';
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  return {
    shape,
    issuer,
    jwksUri,
    requests,
    async mint(audience, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      let lifetime = o.lifetimeSeconds ?? (shape === 'github' ? 300 : 3600);
      let iat = now;
      if (o.expiredSecondsAgo !== undefined) {
        lifetime = Math.min(lifetime, 300);
        iat = now - o.expiredSecondsAgo - lifetime;
      }
      if (o.notBeforeInSeconds !== undefined) iat = now + o.notBeforeInSeconds;
      const claims: Record<string, unknown> =
        shape === 'github'
          ? {
              jti: randomUUID(),
              sub: `repo:${owner}/${repo}:ref:refs/heads/main`,
              aud: audience,
              ref: 'refs/heads/main',
              sha: 'c0ffee0000000000000000000000000000000000',
              repository: `${owner}/${repo}`,
              repository_owner: owner,
              repository_owner_id: '4242',
              repository_id: '171717',
              run_id: '9000001',
              actor: 'octo-dev',
              workflow: 'train',
              workflow_ref: `${owner}/${repo}/.github/workflows/train.yml@refs/heads/main`,
              job_workflow_ref: `${owner}/${repo}/.github/workflows/train.yml@refs/heads/main`,
              event_name: 'push',
              runner_environment: 'github-hosted',
              iss: issuer,
              nbf: iat - 5,
              iat,
              exp: iat + lifetime,
            }
          : {
              aud: [audience],
              exp: iat + lifetime,
              iat,
              iss: issuer,
              jti: randomUUID(),
              'kubernetes.io': { namespace: ns, pod: { name: `${sa}-7d9f`, uid: randomUUID() }, serviceaccount: { name: sa, uid: randomUUID() } },
              nbf: iat,
              sub: `system:serviceaccount:${ns}:${sa}`,
            };
      if (o.notBeforeInSeconds !== undefined) claims.nbf = now + o.notBeforeInSeconds;
      if (o.noJti) delete claims.jti;
      for (const [k, v] of Object.entries(o.claims ?? {})) {
        if (v === undefined) delete claims[k];
        else claims[k] = v;
      }
      if (o.algNone) return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      if (o.hs256WithPublicKey) {
        const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${b64(claims)}`;
        return `${input}.${createHmac('sha256', JSON.stringify(key.publicJwk)).update(input).digest('base64url')}`;
      }
      const signer = o.unknownKey ? await newKey('wk') : key;
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signer.kid }).sign(signer.privateKey);
    },
    setDown(d) {
      down = d;
    },
    setDiscovery(o) {
      overrides = { ...overrides, ...o };
    },
    close: () => srv.close(),
  };
}
