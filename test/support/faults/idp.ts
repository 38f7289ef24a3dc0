import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

/**
 * A small OpenID provider for fault tests, meant to be reached through a FaultProxy: its issuer is the
 * relay's origin (set once the relay listens), so that everything trackgate fetches from it (discovery,
 * JWKS, the token endpoint) crosses the relay the test turns bad. It has no login pages: a test reads
 * the nonce from trackgate's authorization redirect and makes the code (code()) or the ID token
 * (idToken()) the IdP would have handed the browser. Listens on 127.0.0.1 only.
 */
export class FaultIdp {
  /** Set to the relay's origin before the connection is saved. */
  origin = '';
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly key: { privateKey: CryptoKey; jwk: JWK },
    readonly clientId: string,
  ) {}

  get issuer(): string {
    return `${this.origin}/idp`;
  }

  static async start(clientId = 'fault-client'): Promise<FaultIdp> {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const key = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: 'fault-k1', alg: 'RS256', use: 'sig' } };
    let idp: FaultIdp | null = null;
    const server = http.createServer((req, res) => void idp?.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    idp = new FaultIdp(server, (server.address() as AddressInfo).port, key, clientId);
    return idp;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    if (path === '/idp/.well-known/openid-configuration') {
      return json(200, {
        issuer: this.issuer,
        authorization_endpoint: `${this.issuer}/authorize`,
        token_endpoint: `${this.issuer}/token`,
        jwks_uri: `${this.issuer}/jwks`,
        response_types_supported: ['code', 'id_token'],
        response_modes_supported: ['query', 'fragment', 'form_post'],
        grant_types_supported: ['authorization_code', 'implicit'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
      });
    }
    if (path === '/idp/jwks') return json(200, { keys: [this.key.jwk] });
    if (path === '/idp/token' && req.method === 'POST') {
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      const claims = JSON.parse(Buffer.from(form.get('code') ?? '', 'base64url').toString() || '{}') as Record<string, unknown>;
      return json(200, { token_type: 'Bearer', access_token: 'fault-access', expires_in: 300, id_token: await this.idToken(claims) });
    }
    json(404, { error: 'not_found' });
  }

  /** The authorization code the IdP would hand the browser for these claims (nonce, sub, email). */
  code(claims: { nonce: string; sub: string; email: string }): string {
    return Buffer.from(JSON.stringify(claims)).toString('base64url');
  }

  /** A signed ID token with these claims (implicit flow), for the client, valid five minutes. */
  idToken(claims: Record<string, unknown>): Promise<string> {
    return new SignJWT({ email_verified: true, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: this.key.jwk.kid! })
      .setIssuer(this.issuer)
      .setAudience(this.clientId)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(this.key.privateKey);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
