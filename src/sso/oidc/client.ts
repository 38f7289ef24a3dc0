import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import type { Flow, ProviderMetadata, ResponseMode } from './discovery.ts';
import { isTemplatedIssuer, TENANT_ID_PATTERN } from './issuer.ts';
import { IdpFetcher, IdpFetchError } from './idp-fetch.ts';
import { OidcLoginError } from './problems.ts';

/** What one login attempt must remember until the callback (the transaction). */
export interface AuthorizationRequest {
  url: string;
  state: string;
  nonce: string;
  /** PKCE verifier (code flow only). */
  codeVerifier?: string;
}

export interface RelyingParty {
  metadata: ProviderMetadata;
  clientId: string;
  clientSecret?: string | null | undefined;
  flow: Flow;
  responseMode: ResponseMode;
  scopes: string[];
  redirectUri: string;
  /** TRACKGATE_ALLOW_HTTP_ISSUERS (discovery already refused non-loopback http URLs). */
  allowHttp: boolean;
  /** The app's IdpFetcher for the token request; without one, a fetcher for this exchange alone (its address policy from allowHttp). */
  fetcher?: IdpFetcher | undefined;
}

/**
 * The authorization request, openid-client's one job (docs/ARCHITECTURE.md,
 * "OIDC libraries"): a client Configuration from the stored discovery
 * document, random state and nonce, PKCE S256 for the code flow,
 * response_type=id_token plus the chosen response_mode for the implicit flow.
 * It sends nothing to the IdP: the browser takes the URL there.
 */
export async function buildAuthorizationRequest(rp: RelyingParty, extra: Record<string, string> = {}): Promise<AuthorizationRequest> {
  const config = new client.Configuration(rp.metadata as client.ServerMetadata, rp.clientId, undefined, client.None());
  // Only with TRACKGATE_ALLOW_HTTP_ISSUERS (a loopback test IdP): without it an http endpoint never got past discovery.
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated only to stand out, which is the point here
  if (rp.allowHttp) client.allowInsecureRequests(config);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params: Record<string, string> = {
    redirect_uri: rp.redirectUri,
    scope: rp.scopes.join(' '),
    state,
    nonce,
    ...extra,
  };
  if (rp.flow === 'implicit') {
    client.useIdTokenResponseType(config);
    params.response_mode = rp.responseMode;
    return { url: client.buildAuthorizationUrl(config, params).href, state, nonce };
  }
  const codeVerifier = client.randomPKCECodeVerifier();
  params.code_challenge = await client.calculatePKCECodeChallenge(codeVerifier);
  params.code_challenge_method = 'S256';
  return { url: client.buildAuthorizationUrl(config, params).href, state, nonce, codeVerifier };
}

/** An error answer from the IdP's authorization endpoint, in words for the admin. */
/** The error codes of RFC 6749 (§4.1.2.1, §4.2.2.1) and OpenID Connect Core (§3.1.2.6) an authorization response may carry. */
const REGISTERED_ERRORS = new Set([
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
]);

/** Longest IdP error description shown or stored; past it, the text is cut. */
export const IDP_TEXT_MAX = 200;

/**
 * Text from an authorization response for a page or the audit log: control
 * characters (newlines, bidi overrides, zero-width) become spaces, runs of
 * spaces one, and it is cut to `max` characters. It is rendered text-escaped,
 * never as markup or a link.
 */
export function idpText(value: string, max = IDP_TEXT_MAX): string {
  const flat = value
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = Array.from(flat); // code points, so that a cut never splits a surrogate pair
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat;
}

/**
 * The IdP's error code, when it is one the specifications register: anything
 * else is named only as "an unregistered error" (the code is as much the
 * sender's text as the description).
 */
export function registeredError(params: URLSearchParams): string | null {
  const error = params.get('error');
  return error && REGISTERED_ERRORS.has(error) ? error : null;
}

/**
 * The IdP's error answer (error, error_description), for a response whose
 * state and browser binding were verified: whoever is at the browser can still
 * write the description, so it is cleaned and cut (idpText).
 */
export function authorizationErrorFrom(params: URLSearchParams): OidcLoginError | null {
  const raw = params.get('error');
  if (!raw) return null;
  const registered = registeredError(params);
  const error = registered ?? idpText(raw, 64);
  const description = idpText(params.get('error_description') ?? '');
  const hints: Record<string, string> = {
    access_denied: 'the user is not assigned to this application in the IdP, or declined',
    unauthorized_client: 'the application is not allowed this grant type in the IdP (enable the implicit grant for ID tokens, or the authorization code grant)',
    unsupported_response_type: 'the IdP application does not allow this response type (enable the implicit grant for ID tokens, or use flow "code")',
    invalid_request: "the IdP refused the request; check that the callback URI registered in the IdP is exactly trackgate's",
    invalid_scope: "the IdP does not know one of the connection's scopes",
    login_required: 'the user must sign in at the IdP',
  };
  const hint = registered ? hints[registered] : undefined;
  return new OidcLoginError('idp_error', `the IdP answered "${error}"${description ? `: ${description}` : ''}${hint ? ` (${hint})` : ''}`, { error, description });
}

/**
 * An `iss` authorization-response parameter (RFC 9207) must name the
 * connection's issuer; for an Azure AD template, any allowed tenant's issuer.
 */
export function checkResponseIssuer(params: URLSearchParams, metadata: ProviderMetadata, allowedTenantIds: string[]): void {
  const iss = params.get('iss');
  if (iss === null) {
    // RFC 9207 §2.4: a response carrying an ID token names its issuer in it.
    if (metadata.authorization_response_iss_parameter_supported === true && !params.has('id_token')) {
      throw new OidcLoginError('response_issuer_missing', 'the IdP announces that it names itself in login responses ("iss"), but this response does not');
    }
    return;
  }
  const ok = isTemplatedIssuer(metadata.issuer)
    ? allowedTenantIds.some((t) => TENANT_ID_PATTERN.test(t) && metadata.issuer.split('{tenantid}').join(t).toLowerCase() === iss.toLowerCase())
    : iss === metadata.issuer;
  if (!ok) {
    throw new OidcLoginError('response_issuer_mismatch', `the login response came from another issuer ("${idpText(iss)}"), not this connection's ("${metadata.issuer}")`, { iss: idpText(iss) });
  }
}

/**
 * Code flow: exchanges the code (with the PKCE verifier and, when the
 * connection has one, the client secret) for tokens and returns the ID token,
 * which the caller validates with verifyIdToken().
 *
 * The callback check and the token request are oauth4webapi's. Its answer is
 * read here, not by processAuthorizationCodeResponse(): that would validate
 * the ID token's claims too (jose's job, verifyIdToken), against an issuer
 * that cannot be an Azure AD `{tenantid}` template, and its errors do not say
 * what the admin should fix. The state has already been matched by the
 * transaction lookup and `iss` by checkResponseIssuer().
 */
export async function exchangeCode(rp: RelyingParty, params: URLSearchParams, state: string, codeVerifier: string, timeoutMs: number): Promise<string> {
  const as: oauth.AuthorizationServer = {
    ...(rp.metadata as oauth.AuthorizationServer),
    // Checked by checkResponseIssuer (which understands templates).
    authorization_response_iss_parameter_supported: false,
  };
  const c: oauth.Client = { client_id: rp.clientId };
  const stripped = new URLSearchParams(params);
  stripped.delete('iss');
  let validated: URLSearchParams;
  try {
    validated = oauth.validateAuthResponse(as, c, stripped, state);
  } catch (err) {
    throw new OidcLoginError('invalid_callback', `the IdP's response is not a valid authorization response (${(err as Error).message})`, {}, err);
  }
  const methods = rp.metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  const auth = rp.clientSecret
    ? methods.includes('client_secret_basic') || !methods.includes('client_secret_post')
      ? oauth.ClientSecretBasic(rp.clientSecret)
      : oauth.ClientSecretPost(rp.clientSecret)
    : oauth.None();
  const fetcher = rp.fetcher ?? new IdpFetcher({ allowPrivateAddresses: rp.allowHttp, timeoutMs });
  let response: Response;
  let parsed: unknown;
  try {
    response = await oauth.authorizationCodeGrantRequest(as, c, auth, validated, rp.redirectUri, codeVerifier, {
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated to stand out: only set with allowHttp, for local IdPs in development and tests
      [oauth.allowInsecureRequests]: rp.allowHttp,
      // Bounded, JSON-only, public addresses only; redirects are not followed.
      [oauth.customFetch]: fetcher.fetchFor('token'),
      signal: AbortSignal.timeout(timeoutMs),
    });
    parsed = await response.json().catch(() => ({}));
  } catch (err) {
    if (err instanceof IdpFetchError) throw new OidcLoginError(`token_endpoint_${err.problem}`, err.message, err.detail, err);
    throw new OidcLoginError('token_endpoint_unreachable', "the IdP's token endpoint could not be reached", {}, err);
  } finally {
    if (!rp.fetcher) await fetcher.close();
  }
  const body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  if (!response.ok) {
    const error = typeof body.error === 'string' ? body.error : `HTTP ${response.status}`;
    const description = typeof body.error_description === 'string' ? body.error_description : '';
    const hint = error === 'invalid_client' ? ' (check the client ID and client secret on the connection)' : error === 'invalid_grant' ? ' (the code was already used, expired, or the PKCE verifier or callback URI does not match)' : '';
    throw new OidcLoginError('token_request_failed', `the IdP refused to exchange the authorization code: ${error}${description ? `: ${description}` : ''}${hint}`, { error, description });
  }
  if (typeof body.id_token !== 'string') {
    throw new OidcLoginError('id_token_missing', 'the IdP answered the code exchange without an ID token; request the "openid" scope');
  }
  return body.id_token;
}
