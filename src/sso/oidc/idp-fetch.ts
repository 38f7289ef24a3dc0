import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import type { RequestInit as UndiciRequestInit } from 'undici';
import type { Logger } from '../../log/logger.ts';
import { blockedAddressReason, parseNetworks } from './address-policy.ts';
import type { Network } from './address-policy.ts';

/**
 * The one way trackgate fetches from an identity provider: discovery, the
 * JWKS (through jose's customFetch) and the token request (through
 * oauth4webapi's customFetch) all go through an IdpFetcher.
 *
 * What an IdP (or an admin naming one) controls cannot take the gateway down
 * or turn it into a scanner of its own network:
 * - every answer is read as a stream and abandoned as soon as it passes its
 *   kind's byte limit (Content-Length is checked first but not trusted: a
 *   chunked answer has none, and a compressed one grows when decoded);
 * - a 2xx answer must be of its kind's content type (JSON; XML for SAML
 *   metadata), checked before reading;
 * - one deadline covers connecting, the head and the whole body;
 * - redirects are never followed (the caller sees the 3xx);
 * - the host name is resolved by the connector itself, every address it
 *   resolves to must be public (address-policy.ts), and the socket connects
 *   to the address that was checked, so a DNS answer that changes between a
 *   check and a connect (DNS rebinding) cannot slip through;
 * - a network failure of any kind (refused, reset, TLS, DNS, an address the
 *   policy refuses) gives the same words to the admin; the detail goes to
 *   the log.
 * The address policy is off only in development mode (allowHttpIssuers),
 * where test IdPs listen on 127.0.0.1.
 */

export type IdpDocumentKind = 'discovery' | 'jwks' | 'token' | 'scanner_keys' | 'saml_metadata';

interface KindPolicy {
  /** What is being fetched, as the admin reads it. */
  what: string;
  maxBytes: number;
  contentTypes: RegExp;
  /** The content types, as the admin reads them when another came. */
  expected: string;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;
const JSON_EXPECTED = 'JSON (application/json)';
// SAML metadata: application/samlmetadata+xml, application/xml, text/xml (and text/plain, which some IdPs' download links send).
const XML_TYPE = /^(?:application\/(?:[\w.+-]+\+)?xml|text\/xml|text\/plain)$/;

export const IDP_LIMITS: Record<IdpDocumentKind, KindPolicy> = {
  discovery: { what: 'the issuer', maxBytes: 256 * 1024, contentTypes: JSON_TYPE, expected: JSON_EXPECTED },
  // jwk-set+json matches the +json suffix rule.
  jwks: { what: "the IdP's signing keys (jwks_uri)", maxBytes: 512 * 1024, contentTypes: JSON_TYPE, expected: JSON_EXPECTED },
  // ID, access and refresh tokens with a few hundred group claims stay far below this.
  token: { what: "the IdP's token endpoint", maxBytes: 256 * 1024, contentTypes: JSON_TYPE, expected: JSON_EXPECTED },
  // A secret scanner's public keys (GitHub publishes a handful of PEM keys).
  scanner_keys: { what: "the secret scanner's public keys", maxBytes: 64 * 1024, contentTypes: JSON_TYPE, expected: JSON_EXPECTED },
  // An IdP's SAML metadata (parsed by src/sso/saml/metadata.ts, which holds the same limit for pasted XML).
  saml_metadata: { what: "the IdP's SAML metadata URL", maxBytes: 256 * 1024, contentTypes: XML_TYPE, expected: 'XML (application/samlmetadata+xml, application/xml)' },
};

export type IdpFetchProblem = 'unreachable' | 'timeout' | 'too_large' | 'not_json';

/** A fetch from an IdP that failed; `message` is for the admin, `detail` for the log only. */
export class IdpFetchError extends Error {
  constructor(
    readonly problem: IdpFetchProblem,
    readonly kind: IdpDocumentKind,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'IdpFetchError';
  }
}

/** The connector refused to connect: an address the policy does not allow. */
export class AddressNotAllowedError extends Error {
  readonly code = 'ERR_ADDRESS_NOT_ALLOWED';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${host} resolves to ${address} (${reason}), which trackgate does not connect to`);
    this.name = 'AddressNotAllowedError';
  }
}

export interface IdpFetcherOptions {
  /** Development mode (allowHttpIssuers): loopback and private addresses allowed. */
  allowPrivateAddresses: boolean;
  /** The deadline of one whole exchange: connect, head and body. */
  timeoutMs: number;
  logger?: Logger | undefined;
  /** Networks (CIDRs) allowed although not public: the operator's own IdPs (TRACKGATE_SSO_ALLOWED_NETWORKS). */
  allowedNetworks?: readonly string[] | undefined;
  /** Host name resolution (all addresses); dns.lookup by default. */
  resolve?: ((hostname: string) => Promise<string[]>) | undefined;
}

export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

async function resolveAll(hostname: string): Promise<string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

function kib(n: number): string {
  return `${Math.round(n / 1024)} KB`;
}

export class IdpFetcher {
  private readonly agent: Agent;
  private readonly resolve: (hostname: string) => Promise<string[]>;
  private readonly allowedNetworks: Network[];

  constructor(private readonly options: IdpFetcherOptions) {
    this.resolve = options.resolve ?? resolveAll;
    this.allowedNetworks = parseNetworks(options.allowedNetworks ?? []);
    const base = buildConnector({ timeout: options.timeoutMs });
    this.agent = new Agent({
      // Connect by the address that was checked: resolution and policy live
      // here, per connection, so nothing re-resolves the name afterwards.
      // TLS still verifies the certificate against the host name (SNI comes from `host`).
      connect: (opts, callback) => {
        this.pinnedAddress(opts.hostname).then(
          (address) => base({ ...opts, hostname: address }, callback),
          (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), null),
        );
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4000,
      // Per IdP origin; a slow IdP holds only its own.
      connections: 16,
    });
  }

  /** The address to connect to for `hostname`; throws AddressNotAllowedError when any address it resolves to is not public. */
  async pinnedAddress(hostname: string): Promise<string> {
    const host = hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host) ? [host] : await this.resolve(host);
    const first = addresses[0];
    if (first === undefined) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
    if (!this.options.allowPrivateAddresses) {
      // Every answer is checked, not only the one used: a name that mixes a
      // public and a private address is refused as a whole.
      for (const address of addresses) {
        const reason = blockedAddressReason(address, this.allowedNetworks);
        if (reason) throw new AddressNotAllowedError(host, address, reason);
      }
    }
    return first;
  }

  /**
   * One sentence for every network failure, whether the address was refused,
   * the port closed or the certificate wrong: the admin cannot tell them
   * apart (no port scanning through the gateway); the log can.
   */
  private unreachable(kind: IdpDocumentKind, where: string, detail: Record<string, unknown>): IdpFetchError {
    const what = IDP_LIMITS[kind].what;
    this.options.logger?.warn({ kind, url: where, ...detail }, `sso: ${what} could not be reached`);
    return new IdpFetchError(
      'unreachable',
      kind,
      `${what} could not be reached (${where}); check the URL. trackgate connects only to identity providers on public internet addresses, and its log has the details`,
      detail,
    );
  }

  /**
   * The address policy for `url` without connecting (for endpoints a save
   * does not fetch, such as the token endpoint); throws IdpFetchError. Every
   * later fetch is checked again at its own connect.
   */
  async checkAddress(kind: IdpDocumentKind, url: string): Promise<void> {
    const target = new URL(url);
    const where = `${target.origin}${target.pathname}`;
    try {
      await this.pinnedAddress(target.hostname);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw this.unreachable(kind, where, { reason: e.message, code: e.code, ...(err instanceof AddressNotAllowedError ? { address: err.address, policy: err.reason } : {}) });
    }
  }

  /** A fetch function for one kind of IdP document (for jose's and oauth4webapi's customFetch). */
  fetchFor(kind: IdpDocumentKind): FetchLike {
    return (url, init) => this.fetch(kind, url, init);
  }

  /**
   * Fetches `url` and returns a Response whose body is already read, within
   * the kind's limit. Throws IdpFetchError.
   */
  async fetch(kind: IdpDocumentKind, url: string | URL, init: RequestInit = {}): Promise<Response> {
    const policy = IDP_LIMITS[kind];
    const target = new URL(url);
    const where = `${target.origin}${target.pathname}`;
    const unreachable = (detail: Record<string, unknown>) => this.unreachable(kind, where, detail);
    const timedOut = () => new IdpFetchError('timeout', kind, `${policy.what} did not answer within ${this.options.timeoutMs / 1000} s (${where})`, { url: where });
    if (target.protocol !== 'https:' && !(target.protocol === 'http:' && this.options.allowPrivateAddresses)) {
      throw unreachable({ reason: `scheme ${target.protocol} not allowed` });
    }

    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    const isTimeout = () => deadline.aborted || (signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError');
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      res = await undiciFetch(target, {
        method: init.method ?? 'GET',
        headers: init.headers as UndiciRequestInit['headers'],
        body: init.body as UndiciRequestInit['body'],
        redirect: 'manual',
        signal,
        dispatcher: this.agent,
      });
    } catch (err) {
      if (isTimeout()) throw timedOut();
      if (init.signal?.aborted) throw init.signal.reason;
      const cause = (err as { cause?: unknown }).cause ?? err;
      const c = cause as { code?: string; message?: string; address?: string; reason?: string };
      throw unreachable({ reason: c.message ?? String(cause), code: c.code, ...(cause instanceof AddressNotAllowedError ? { address: cause.address, policy: cause.reason } : {}) });
    }

    const ok = res.status >= 200 && res.status < 300;
    const abandon = async (e: IdpFetchError): Promise<never> => {
      await res.body?.cancel().catch(() => {});
      throw e;
    };
    // Media types are case-insensitive (RFC 9110 §8.3.1): an IdP may send "Application/XML".
    const contentType = ((res.headers.get('content-type') ?? '').split(';')[0] ?? '').trim().toLowerCase();
    if (ok && !policy.contentTypes.test(contentType)) {
      await abandon(new IdpFetchError('not_json', kind, `${policy.what} answered with content type "${contentType || 'none'}", not ${policy.expected} (${where})`, { url: where, content_type: contentType }));
    }
    const tooLarge = (seen: string) =>
      new IdpFetchError('too_large', kind, `${policy.what} answered with a document larger than ${kib(policy.maxBytes)}, trackgate's limit for it (${seen}; ${where})`, { url: where, limit: policy.maxBytes });
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > policy.maxBytes) await abandon(tooLarge(`Content-Length ${declared}`));

    // Read as a stream, counting decoded bytes, and stop at the limit.
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      // A fetch body is bytes; undici types its chunks as any.
      const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          if (total > policy.maxBytes) {
            await reader.cancel().catch(() => {});
            throw tooLarge(`stopped reading at ${total} bytes`);
          }
          chunks.push(value);
        }
      } catch (err) {
        if (err instanceof IdpFetchError) throw err;
        await reader.cancel().catch(() => {});
        if (isTimeout()) throw timedOut();
        if (init.signal?.aborted) throw init.signal.reason;
        throw unreachable({ reason: `the answer broke off: ${(err as Error).message}` });
      }
    }

    const headers = new Headers();
    for (const [name, value] of res.headers) {
      // The body handed on is decoded and complete.
      if (name !== 'content-encoding' && name !== 'content-length' && name !== 'transfer-encoding') headers.append(name, value);
    }
    const body = NULL_BODY_STATUS.has(res.status) ? null : Buffer.concat(chunks, total);
    return new Response(body, { status: res.status, statusText: res.statusText, headers });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
