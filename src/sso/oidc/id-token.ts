import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { fillTenant } from './issuer.ts';
import { IdpFetchError } from './idp-fetch.ts';
import { OidcLoginError } from './problems.ts';

export interface IdTokenExpectations {
  /** The issuer from discovery; may be an Azure AD template holding `{tenantid}`. */
  issuer: string;
  templated: boolean;
  /** Lower-case tenant GUIDs allowed under a templated issuer. */
  allowedTenantIds: string[];
  clientId: string;
  nonce: string;
  /** Pinned: the public-key algorithms the IdP announced. Never taken from the token. */
  algorithms: string[];
  clockToleranceSeconds: number;
}

export interface VerifiedIdToken {
  claims: JWTPayload & Record<string, unknown>;
  /** The concrete issuer the token carried (the template filled with its tid for Azure AD). */
  issuer: string;
  subject: string;
  tenantId?: string;
}

const HMAC = /^HS\d+$/;

/**
 * Validates an ID token (OIDC Core 3.1.3.7 / 3.2.2.11) with jose: signature
 * against the IdP's JWKS with the algorithm pinned, then iss (exact, or the
 * Azure AD template filled with an allowed tid), aud, azp, exp/iat with a
 * small clock tolerance, nonce and sub. Both flows use this one function: the
 * implicit flow because its token travels through the browser, the code flow
 * as defence in depth (OIDC Core lets a client skip the signature of a token
 * from the token endpoint; trackgate does not).
 *
 * Why not openid-client's implicitAuthentication() or oauth4webapi's ID-token
 * checks: their JWKS cache cannot be given a rotation cooldown (see jwks.ts)
 * and their issuer check cannot take an Azure AD template off
 * login.microsoftonline.com.
 */
export async function verifyIdToken(idToken: string, keys: JWTVerifyGetKey, expect: IdTokenExpectations): Promise<VerifiedIdToken> {
  if (typeof idToken !== 'string' || idToken.split('.').length !== 3) {
    throw new OidcLoginError('id_token_malformed', 'the IdP did not send a well-formed ID token (a signed JWT in three parts)');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(idToken);
  } catch (err) {
    throw new OidcLoginError('id_token_malformed', 'the ID token header cannot be read', {}, err);
  }
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the token's own header: alg may be any JSON value, named as it stringifies
  const alg = String((header as { alg?: unknown }).alg ?? '');
  if (alg === 'none' || alg === '') {
    throw new OidcLoginError('id_token_unsigned', 'the ID token is not signed (alg "none"); trackgate only accepts tokens signed by the IdP', { alg });
  }
  if (HMAC.test(alg)) {
    throw new OidcLoginError(
      'id_token_alg_not_allowed',
      `the ID token is signed with ${alg}, a shared-secret algorithm; trackgate accepts only the IdP's public-key signatures (${expect.algorithms.join(', ')}). Configure the application to sign ID tokens with RS256`,
      { alg },
    );
  }
  if (!expect.algorithms.includes(alg)) {
    throw new OidcLoginError('id_token_alg_not_allowed', `the ID token is signed with ${alg}, but the IdP's discovery document announces ${expect.algorithms.join(', ')}`, { alg });
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, keys, {
      algorithms: expect.algorithms,
      clockTolerance: expect.clockToleranceSeconds,
    }));
  } catch (err) {
    throw mapJoseError(err, header.kid);
  }
  const claims = payload as JWTPayload & Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  const tol = expect.clockToleranceSeconds;

  // iss (and, under an Azure AD template, tid from the allow-list).
  let issuer = expect.issuer;
  let tenantId: string | undefined;
  if (expect.templated) {
    const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : '';
    if (!tid) throw new OidcLoginError('tenant_missing', 'the ID token has no "tid" (tenant ID) claim, which a multi-tenant Azure AD issuer requires', {});
    if (!expect.allowedTenantIds.map((t) => t.toLowerCase()).includes(tid)) {
      throw new OidcLoginError('tenant_not_allowed', `the user's Azure AD tenant (${tid}) is not in this connection's allowed tenant IDs`, { tid });
    }
    tenantId = tid;
    issuer = fillTenant(expect.issuer, typeof claims.tid === 'string' ? claims.tid : tid);
  }
  if (claims.iss !== issuer) {
    throw new OidcLoginError('issuer_mismatch', `the token's issuer ("${String(claims.iss)}") is not the connection's issuer ("${issuer}"); the token was made by another IdP or authorization server`, {
      iss: claims.iss,
      expected: issuer,
    });
  }

  // aud / azp.
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  if (!audiences.includes(expect.clientId)) {
    throw new OidcLoginError('audience_mismatch', `the token's audience is not this application's client ID (expected "${expect.clientId}", the token is for ${JSON.stringify(aud ?? null)}); check the client ID on the connection`, {
      aud,
    });
  }
  if (audiences.length > 1 && claims.azp === undefined) {
    throw new OidcLoginError('azp_missing', 'the token names several audiences but no authorized party ("azp"), so it may have been issued to another application', { aud });
  }
  if (claims.azp !== undefined && claims.azp !== expect.clientId) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- azp is whatever the token says, shown as it is
    throw new OidcLoginError('azp_mismatch', `the token was issued to another application (azp "${String(claims.azp)}"), not this client ID`, { azp: claims.azp });
  }

  // exp / iat (jose checked exp and nbf with the tolerance; it does not require iat).
  if (typeof claims.exp !== 'number') throw new OidcLoginError('exp_missing', 'the ID token has no expiry ("exp")');
  if (typeof claims.iat !== 'number') throw new OidcLoginError('iat_missing', 'the ID token has no issue time ("iat")');
  if (claims.iat > now + tol) {
    throw new OidcLoginError('iat_in_future', `the ID token was issued ${claims.iat - now} s in the future; the clocks of the IdP and trackgate disagree`, { iat: claims.iat, now });
  }

  // nonce and sub.
  if (typeof claims.nonce !== 'string' || claims.nonce !== expect.nonce) {
    throw new OidcLoginError(
      'nonce_mismatch',
      claims.nonce === undefined ? 'the ID token has no nonce; the IdP must echo the nonce of the login request' : 'the ID token\'s nonce does not belong to this login attempt (a replayed or foreign token)',
      {},
    );
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw new OidcLoginError('sub_missing', 'the ID token has no subject ("sub"), so the user cannot be identified');
  }
  // A NUL character fits no account field, and PostgreSQL cannot store one (the login ended in a 500).
  const nul = Object.entries(claims).find(([, v]) => (typeof v === 'string' ? v : Array.isArray(v) ? v.filter((x) => typeof x === 'string').join('') : '').includes('\0'));
  if (nul) {
    throw new OidcLoginError('id_token_claim_invalid', `the ID token's "${nul[0]}" claim contains a NUL character (U+0000); check the IdP's claim mapping`, { claim: nul[0] });
  }
  const result: VerifiedIdToken = { claims, issuer, subject: claims.sub };
  if (tenantId !== undefined) result.tenantId = tenantId;
  return result;
}

function mapJoseError(err: unknown, kid: unknown): OidcLoginError {
  // The JWKS fetch itself failed (unreachable, too large, not JSON, too slow): its message says which.
  if (err instanceof IdpFetchError) return new OidcLoginError(`jwks_${err.problem}`, err.message, err.detail, err);
  if (err instanceof joseErrors.JWTExpired) {
    return new OidcLoginError('id_token_expired', 'the ID token has expired; if this keeps happening, the clocks of the IdP and trackgate disagree', { claim: err.claim }, err);
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new OidcLoginError('id_token_claim_invalid', `the ID token's "${err.claim}" claim is invalid (${err.reason})`, { claim: err.claim, reason: err.reason }, err);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new OidcLoginError('signature_invalid', "the ID token's signature does not verify with the IdP's published keys; the token was altered or was not made by this IdP", { kid }, err);
  }
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new OidcLoginError('kid_missing', 'the ID token does not say which key signed it ("kid"), and the IdP publishes several keys', {}, err);
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return new OidcLoginError('key_not_found', `the ID token was signed with a key the IdP does not publish (kid ${JSON.stringify(kid ?? null)}); if the IdP just rotated its keys, try again shortly`, { kid }, err);
  }
  if (err instanceof joseErrors.JWKSTimeout || (err as { name?: string } | null)?.name === 'TypeError') {
    return new OidcLoginError('jwks_unreachable', "the IdP's signing keys (jwks_uri) could not be fetched", {}, err);
  }
  if (err instanceof joseErrors.JWKSInvalid) return new OidcLoginError('jwks_invalid', "the IdP's jwks_uri does not hold a valid key set", {}, err);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new OidcLoginError('id_token_alg_not_allowed', 'the ID token is signed with an algorithm this connection does not accept', {}, err);
  if (err instanceof joseErrors.JOSEError) return new OidcLoginError('id_token_invalid', `the ID token is invalid (${err.code})`, {}, err);
  return new OidcLoginError('id_token_invalid', 'the ID token could not be verified', {}, err);
}
