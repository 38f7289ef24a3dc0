import * as oauth from 'oauth4webapi';
import type { DiscoveryProblem } from './problems.ts';
import { enteredIssuerMatchesTemplate, isTemplatedIssuer, TENANT_ID_PATTERN, urlProblem } from './issuer.ts';
import type { UrlPolicy } from './issuer.ts';
import { IdpFetcher, IdpFetchError } from './idp-fetch.ts';

/**
 * Discovery (OpenID Connect Discovery 1.0) with a report of everything that is
 * wrong, field by field, so an admin saving a connection can fix it in one go.
 *
 * oauth4webapi requests and reads the document (through the IdpFetcher): the
 * well-known URL, a 200 answer, a JSON object with an issuer. What stays here
 * is trackgate's judgement of it, which no library makes: the issuer rule
 * (a trailing slash aside, or the Azure AD `{tenantid}` template on any host,
 * with its tenant allow-list: openid-client's `discovery()` knows templates
 * only on login.microsoftonline.com), the URL policy of each endpoint, and
 * whether the IdP offers the flow, response mode, PKCE, client
 * authentication and public-key algorithms the connection needs, each named
 * as the field to fix.
 */

export type Flow = 'implicit' | 'code';
export type ResponseMode = 'form_post' | 'fragment';

/** The fields of a discovery document trackgate relies on (others are kept as they came). */
export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint?: string;
  jwks_uri: string;
  response_types_supported?: string[];
  response_modes_supported?: string[];
  grant_types_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
  end_session_endpoint?: string;
  [key: string]: unknown;
}

export interface DiscoveryInput {
  issuer: string;
  clientId: string;
  flow: Flow;
  responseMode: ResponseMode;
  clientSecret?: string | null | undefined;
  allowedTenantIds?: string[] | null | undefined;
}

export interface DiscoveryOptions extends UrlPolicy {
  timeoutMs?: number;
  /** Also fetch jwks_uri and check it has signing keys (default true). */
  checkJwks?: boolean;
  /** The app's IdpFetcher; without one, a fetcher for this call alone (its address policy from allowHttpIssuers). */
  fetcher?: IdpFetcher;
}

export interface DiscoveryResult {
  ok: boolean;
  problems: DiscoveryProblem[];
  /** Present when the document could be read and its issuer matched, even if other problems remain. */
  metadata?: ProviderMetadata;
  /** The issuer as the discovery document says it (a template for Azure AD multi-tenant). */
  issuer?: string;
  /** True when `issuer` holds `{tenantid}`. */
  templated?: boolean;
  /** Asymmetric algorithms ID tokens may be signed with, in the IdP's order. */
  signingAlgorithms?: string[];
}

/** JWS algorithms that verify with a public key. HS* (shared secret) and none are never accepted. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function discoveryUrl(issuer: string): string {
  return issuer.replace(/\/+$/, '') + '/.well-known/openid-configuration';
}

/** Signing algorithms allowed for a provider: what it announces, intersected with the public-key ones; RS256 when it says nothing (OIDC's default). */
export function pinnedAlgorithms(metadata: Pick<ProviderMetadata, 'id_token_signing_alg_values_supported'>): string[] {
  const announced = metadata.id_token_signing_alg_values_supported;
  if (!Array.isArray(announced) || announced.length === 0) return ['RS256'];
  return announced.filter((a) => ASYMMETRIC_ALGORITHMS.includes(a));
}

type Fetched = { ok: true; body: unknown } | { ok: false; code: string; reason: string };

/** An IdpFetchError as a problem: issuer_unreachable, issuer_timeout, discovery_too_large, discovery_not_json, and jwks_* alike. */
function fetchProblem(err: IdpFetchError, kind: 'discovery' | 'jwks'): { ok: false; code: string; reason: string } {
  const prefix = kind === 'discovery' ? 'issuer' : 'jwks';
  const docPrefix = kind === 'discovery' ? 'discovery' : 'jwks';
  const code = err.problem === 'unreachable' || err.problem === 'timeout' ? `${prefix}_${err.problem}` : `${docPrefix}_${err.problem}`;
  return { ok: false, code, reason: err.message };
}

/** A non-200 answer in words: a redirect names where it leads, and the issuer's adds what the URL should be. */
function statusProblem(res: Response, kind: 'discovery' | 'jwks', url: string): { ok: false; code: string; reason: string } {
  const prefix = kind === 'discovery' ? 'issuer' : 'jwks';
  // Discovery's messages name the URL the admin can open; the JWKS's say what it is.
  const named = kind === 'discovery' ? url : `the IdP's signing keys (jwks_uri, ${url})`;
  if (res.status >= 300 && res.status < 400) {
    return { ok: false, code: `${prefix}_unreachable`, reason: `${named} answered with a redirect (HTTP ${res.status}) to ${res.headers.get('location') ?? '?'}; enter the issuer URL exactly as the IdP shows it` };
  }
  const hint = kind === 'discovery' ? '; is this the issuer URL of an OpenID Connect provider?' : '';
  return { ok: false, code: `${prefix}_unreachable`, reason: `${named} answered HTTP ${res.status}${hint}` };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The discovery document, requested and read by oauth4webapi. Its issuer is
 * compared with the one entered by the caller: oauth4webapi's exact
 * comparison refuses a trailing-slash difference and a template, so its
 * mismatch error hands over the document it read (`cause.body`).
 */
async function fetchDiscovery(entered: string, url: string, allowHttp: boolean, fetcher: IdpFetcher): Promise<Fetched> {
  const issuer = new URL(entered);
  try {
    const res = await oauth.discoveryRequest(issuer, {
      [oauth.customFetch]: fetcher.fetchFor('discovery'),
      // Deprecated only to stand out: true solely with TRACKGATE_ALLOW_HTTP_ISSUERS (development, loopback; see urlProblem).
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      [oauth.allowInsecureRequests]: allowHttp,
    });
    return { ok: true, body: await oauth.processDiscoveryResponse(issuer, res) };
  } catch (err) {
    if (err instanceof IdpFetchError) return fetchProblem(err, 'discovery');
    if (!(err instanceof oauth.OperationProcessingError)) {
      // new URL(issuer) of a document whose issuer is no URL at all.
      if (err instanceof TypeError) return { ok: false, code: 'issuer_mismatch', reason: `the discovery document's issuer is not a URL, so it cannot be the issuer entered ("${entered}")` };
      throw err;
    }
    // The document oauth4webapi read, for the errors that carry it (issuer mismatch, invalid response).
    const body = (err.cause as { body?: unknown } | undefined)?.body;
    switch (err.code) {
      case oauth.JSON_ATTRIBUTE_COMPARISON:
        if (isObject(body)) return { ok: true, body };
        return { ok: false, code: 'issuer_mismatch', reason: `the discovery document's issuer does not correspond to the issuer entered ("${entered}")` };
      case oauth.RESPONSE_IS_NOT_CONFORM:
        return statusProblem(err.cause as Response, 'discovery', url);
      case oauth.INVALID_RESPONSE:
        return { ok: false, code: 'discovery_invalid', reason: isObject(body) ? `${url} has no "issuer"` : `${url} is not a discovery document (not a JSON object)` };
      default:
        // PARSE_ERROR, RESPONSE_IS_NOT_JSON: the IdpFetcher already refused a 2xx that is not typed JSON.
        return { ok: false, code: 'discovery_not_json', reason: `${url} did not answer with JSON` };
    }
  }
}

/**
 * The key set behind jwks_uri, read through the IdpFetcher for the save-time
 * check only (does it hold signing keys, and if not, which status, size or
 * type was wrong). Keys for verifying tokens are jose's (jwks.ts).
 */
async function fetchJwks(url: string, fetcher: IdpFetcher): Promise<Fetched> {
  let res: Response;
  try {
    res = await fetcher.fetch('jwks', url, { headers: { accept: 'application/json' } });
  } catch (err) {
    if (!(err instanceof IdpFetchError)) throw err;
    return fetchProblem(err, 'jwks');
  }
  if (res.status !== 200) return statusProblem(res, 'jwks', url);
  try {
    return { ok: true, body: await res.json() };
  } catch {
    return { ok: false, code: 'jwks_not_json', reason: `the IdP's signing keys (jwks_uri, ${url}) did not answer with JSON` };
  }
}

const stringArray = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);

export async function discover(input: DiscoveryInput, options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (options.fetcher) return discoverWith(input, options, options.fetcher);
  const fetcher = new IdpFetcher({ allowPrivateAddresses: options.allowHttpIssuers, timeoutMs: options.timeoutMs ?? 5000 });
  try {
    return await discoverWith(input, options, fetcher);
  } finally {
    await fetcher.close();
  }
}

async function discoverWith(input: DiscoveryInput, options: DiscoveryOptions, fetcher: IdpFetcher): Promise<DiscoveryResult> {
  const problems: DiscoveryProblem[] = [];
  const add = (field: string, code: string, message: string) => problems.push({ field, code, message });

  const entered = input.issuer.trim();
  const issuerUrlProblem = urlProblem(entered, options, 'the issuer URL');
  if (issuerUrlProblem) {
    add('issuer', 'issuer_not_allowed', issuerUrlProblem);
    return { ok: false, problems };
  }
  const parsed = new URL(entered);
  if (parsed.search || parsed.hash) {
    add('issuer', 'issuer_invalid', 'the issuer URL must not have a query string or fragment');
    return { ok: false, problems };
  }
  if (parsed.pathname.includes('/.well-known/')) {
    add('issuer', 'issuer_invalid', 'enter the issuer URL itself, not the address of its .well-known discovery document');
    return { ok: false, problems };
  }
  if (!input.clientId.trim()) add('client_id', 'client_id_missing', 'the client ID is empty');

  const url = discoveryUrl(entered);
  const fetched = await fetchDiscovery(entered, url, options.allowHttpIssuers, fetcher);
  if (!fetched.ok) {
    add('issuer', fetched.code, fetched.reason);
    return { ok: false, problems };
  }
  const doc = fetched.body as Record<string, unknown>;

  // issuer: must equal what was entered (a trailing slash aside), or be the
  // Azure AD multi-tenant template of it.
  const docIssuer = typeof doc.issuer === 'string' ? doc.issuer : '';
  const strip = (s: string) => s.replace(/\/+$/, '');
  const templated = isTemplatedIssuer(docIssuer);
  if (!docIssuer) {
    add('issuer', 'discovery_invalid', `${url} has no "issuer"`);
    return { ok: false, problems };
  }
  if (templated) {
    if (!enteredIssuerMatchesTemplate(entered, docIssuer)) {
      add('issuer', 'issuer_mismatch', `the discovery document's issuer is "${docIssuer}", which does not correspond to the issuer entered ("${entered}")`);
      return { ok: false, problems };
    }
    const tenants = input.allowedTenantIds ?? [];
    if (tenants.length === 0) {
      add(
        'allowed_tenant_ids',
        'tenant_allow_list_required',
        `this issuer is multi-tenant ("${docIssuer}"): any organization's directory could sign in through it. List the tenant IDs allowed to sign in (Azure portal: Microsoft Entra ID → Overview → Tenant ID) in allowed_tenant_ids`,
      );
    }
    for (const t of tenants) {
      if (!TENANT_ID_PATTERN.test(t)) add('allowed_tenant_ids', 'tenant_id_invalid', `"${t}" is not a tenant ID (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)`);
    }
  } else if (strip(docIssuer) !== strip(entered)) {
    add('issuer', 'issuer_mismatch', `the discovery document's issuer is "${docIssuer}", not the issuer entered ("${entered}"); enter exactly "${docIssuer}" if that is the right IdP`);
    return { ok: false, problems };
  }

  // Endpoints.
  const endpoint = (name: string, field: string, required: boolean): string | undefined => {
    const v = doc[name];
    if (v === undefined || v === null || v === '') {
      if (required) add(field, `${name}_missing`, `the discovery document has no ${name}`);
      return undefined;
    }
    if (typeof v !== 'string') {
      add(field, `${name}_invalid`, `the discovery document's ${name} is not a string`);
      return undefined;
    }
    const p = urlProblem(v, options, `the IdP's ${name}`);
    if (p) {
      add(field, `${name}_invalid`, p);
      return undefined;
    }
    return v;
  };
  const authorizationEndpoint = endpoint('authorization_endpoint', 'issuer', true);
  const jwksUri = endpoint('jwks_uri', 'issuer', true);
  const tokenEndpoint = endpoint('token_endpoint', 'flow', input.flow === 'code');
  if (tokenEndpoint && input.flow === 'code') {
    // Not fetched until a login, but its address is judged now, so a document pointing it inward fails here.
    try {
      await fetcher.checkAddress('token', tokenEndpoint);
    } catch (err) {
      if (!(err instanceof IdpFetchError)) throw err;
      add('flow', 'token_endpoint_unreachable', err.message);
    }
  }

  const responseTypes = stringArray(doc.response_types_supported);
  const responseModes = stringArray(doc.response_modes_supported) ?? ['query', 'fragment'];
  const grantTypes = stringArray(doc.grant_types_supported) ?? ['authorization_code', 'implicit'];
  const challengeMethods = stringArray(doc.code_challenge_methods_supported);
  const authMethods = stringArray(doc.token_endpoint_auth_methods_supported) ?? ['client_secret_basic'];

  if (input.flow === 'implicit') {
    if (!responseTypes?.includes('id_token')) {
      add('flow', 'flow_not_supported', `the IdP does not offer the implicit flow (response_type "id_token" is not in response_types_supported: ${JSON.stringify(responseTypes ?? [])}); choose flow "code" or enable the implicit grant for ID tokens in the IdP`);
    } else if (!grantTypes.includes('implicit')) {
      add('flow', 'flow_not_supported', 'the IdP does not list the implicit grant in grant_types_supported; choose flow "code"');
    }
    if (!responseModes.includes(input.responseMode)) {
      add('response_mode', 'response_mode_not_supported', `the IdP does not support response_mode "${input.responseMode}" (it supports ${responseModes.join(', ')}); choose ${input.responseMode === 'form_post' ? '"fragment"' : '"form_post"'}`);
    }
  } else {
    if (!responseTypes?.includes('code')) add('flow', 'flow_not_supported', 'the IdP does not offer the authorization code flow (response_type "code" is not in response_types_supported)');
    else if (!grantTypes.includes('authorization_code')) add('flow', 'flow_not_supported', 'the IdP does not list authorization_code in grant_types_supported');
    if (challengeMethods && !challengeMethods.includes('S256')) add('flow', 'pkce_not_supported', 'the IdP does not support PKCE with S256 (code_challenge_methods_supported), which trackgate requires for the code flow');
    if (input.clientSecret && !authMethods.some((m) => m === 'client_secret_basic' || m === 'client_secret_post')) {
      add('client_secret', 'client_auth_not_supported', `the IdP accepts client secrets neither as client_secret_basic nor client_secret_post (it supports ${authMethods.join(', ')})`);
    }
    if (!input.clientSecret && !authMethods.includes('none')) {
      // Many IdPs accept PKCE-only public clients without announcing "none"; say so, do not refuse.
    }
  }

  const algs = pinnedAlgorithms({ id_token_signing_alg_values_supported: stringArray(doc.id_token_signing_alg_values_supported) });
  if (algs.length === 0) {
    add('issuer', 'no_asymmetric_algorithm', `the IdP signs ID tokens only with ${JSON.stringify(doc.id_token_signing_alg_values_supported)}; trackgate accepts public-key signatures only (RS256, ES256, ...)`);
  }

  if (jwksUri && options.checkJwks !== false) {
    const jwks = await fetchJwks(jwksUri, fetcher);
    if (!jwks.ok) add('issuer', jwks.code, jwks.reason);
    else {
      const keys = (jwks.body as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys)) add('issuer', 'jwks_invalid', `the IdP's jwks_uri (${jwksUri}) is not a JSON Web Key Set`);
      else if (!keys.some((k) => (k as { use?: string } | null)?.use !== 'enc' && ['RSA', 'EC', 'OKP'].includes((k as { kty?: string } | null)?.kty ?? ''))) {
        add('issuer', 'jwks_empty', `the IdP's jwks_uri (${jwksUri}) holds no public signing keys`);
      }
    }
  }

  const metadata: ProviderMetadata | undefined =
    authorizationEndpoint && jwksUri
      ? {
          ...doc,
          issuer: docIssuer,
          authorization_endpoint: authorizationEndpoint,
          jwks_uri: jwksUri,
          ...(tokenEndpoint ? { token_endpoint: tokenEndpoint } : {}),
        }
      : undefined;
  const result: DiscoveryResult = { ok: problems.length === 0, problems, issuer: docIssuer, templated, signingAlgorithms: algs };
  if (metadata) result.metadata = metadata;
  return result;
}
