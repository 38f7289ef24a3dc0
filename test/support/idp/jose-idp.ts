import { createHmac, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { sendJson, startSwappableServer } from './http.ts';

/**
 * A hand-made IdP built with jose: it serves a discovery document and a JWKS
 * and mints whatever token a test asks for, including ones no honest provider
 * produces (no kid, bad signature, alg none, HS256 keyed with the public key).
 * It has no login pages: a test reads state and nonce from trackgate's
 * authorization redirect, mints a token, and posts it to the callback itself.
 */

/** An RS256 signing key and its published JWK (the workload issuer, test/support/workload-idp.ts, signs with these too). */
export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function newKey(kidPrefix = 'jk'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `${kidPrefix}-${randomUUID().slice(0, 8)}`;
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

export interface MintOptions {
  /** Claims to set (override the defaults); a value of `undefined` removes the claim. */
  claims?: Record<string, unknown>;
  /** Leave kid out of the header. */
  noKid?: boolean;
  /** Sign with this key instead of the current one (e.g. a key not in the JWKS). */
  kid?: string;
  /** Flip a byte of the signature. */
  badSignature?: boolean;
  /** An unsigned token: header {alg: "none"}. */
  algNone?: boolean;
  /** HS256 with the current public key's JWK (as JSON) used as the HMAC secret: the classic key-confusion attack. */
  hs256WithPublicKey?: boolean;
  /** Header kid that matches no key. */
  randomKid?: boolean;
}

export interface JoseIdp {
  issuer: string;
  origin: string;
  clientId: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** Make a token for `nonce` (the relying party's) with the defaults: iss, aud=clientId, sub, iat, exp (+5 min), email. */
  mint(nonce: string, options?: MintOptions): Promise<string>;
  /** Add a new key; it signs from now on. `publishOnly` keeps signing with the old key. */
  rotate(options?: { keepOld?: boolean }): Promise<void>;
  /** Publish an extra key (so that the JWKS has several). */
  addKey(): Promise<void>;
  /** Publish only one key. */
  setSingleKey(): void;
  /** Override discovery document fields (undefined removes). */
  setDiscovery(overrides: Record<string, unknown>): void;
  close(): Promise<void>;
}

export async function startJoseIdp(options: { clientId?: string; path?: string } = {}): Promise<JoseIdp> {
  const srv = await startSwappableServer();
  const issuer = `${srv.origin}${options.path ?? '/jose'}`;
  const clientId = options.clientId ?? 'jose-client';
  let keys: SigningKey[] = [await newKey()];
  let overrides: Record<string, unknown> = {};
  let fetches = 0;
  const discovery = () => {
    const doc: Record<string, unknown> = {
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ['code', 'id_token'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      grant_types_supported: ['authorization_code', 'implicit'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'none'],
    };
    for (const [k, v] of Object.entries(overrides)) {
      if (v === undefined) delete doc[k];
      else doc[k] = v;
    }
    return doc;
  };
  srv.setHandler((req, res) => {
    const path = new URL(req.url!, srv.origin).pathname;
    if (path === new URL(issuer).pathname + '/.well-known/openid-configuration') return sendJson(res, 200, discovery());
    if (path === new URL(issuer).pathname + '/jwks') {
      fetches++;
      return sendJson(res, 200, { keys: keys.map((k) => k.publicJwk) });
    }
    sendJson(res, 404, { error: 'not_found' });
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return {
    issuer,
    origin: srv.origin,
    clientId,
    jwksFetches: () => fetches,
    async mint(nonce, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: issuer,
        aud: clientId,
        sub: 'jose-user-1',
        iat: now,
        exp: now + 300,
        nonce,
        email: 'jose.user@jose.example',
        name: 'Jose User',
      };
      for (const [k, v] of Object.entries(o.claims ?? {})) {
        if (v === undefined) delete claims[k];
        else claims[k] = v;
      }
      const key = o.kid ? keys.find((k) => k.kid === o.kid) ?? (await newKey()) : keys[0]!;
      if (o.algNone) return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      if (o.hs256WithPublicKey) {
        const header = { alg: 'HS256', typ: 'JWT', kid: key.kid };
        const input = `${b64(header)}.${b64(claims)}`;
        const secret = JSON.stringify(key.publicJwk);
        return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      }
      const header: { alg: string; typ: string; kid?: string } = { alg: 'RS256', typ: 'JWT' };
      if (!o.noKid) header.kid = o.randomKid ? `random-${randomUUID()}` : key.kid;
      let jwt = await new SignJWT(claims).setProtectedHeader(header).sign(key.privateKey);
      if (o.badSignature) {
        const [h, p, s] = jwt.split('.');
        const sig = Buffer.from(s!, 'base64url');
        sig[0] = sig[0]! ^ 0xff;
        jwt = `${h}.${p}.${sig.toString('base64url')}`;
      }
      return jwt;
    },
    async rotate(r = {}) {
      const fresh = await newKey();
      keys = r.keepOld ? [fresh, ...keys] : [fresh];
    },
    async addKey() {
      keys = [...keys, await newKey()];
    },
    setSingleKey() {
      keys = [keys[0]!];
    },
    setDiscovery(o) {
      overrides = { ...overrides, ...o };
    },
    close: () => srv.close(),
  };
}
