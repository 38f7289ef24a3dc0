// Why a single sign-on login did not complete: the second vocabulary of codes, beside the catalogue.
// These are not API answers: they describe an IdP's answer or the state of a sign-in, for the admin who
// has to fix the IdP or the connection. The sign-in page shows the code with the message, and the log has
// it with the details. Declared once here, each with its meaning and its kind (ErrorKind, as in the
// catalogue: the edge, src/http/errors.ts, answers a kind with its status); OidcLoginError
// (src/sso/oidc/problems.ts) only takes these.
//
// A failed fetch from the IdP is `jwks_<problem>` or `token_endpoint_<problem>` for each IdpFetchProblem
// (src/sso/oidc/idp-fetch.ts); the places that build those codes do not compile if one is missing here.

import type { ErrorKind } from './catalogue.ts';

export const LOGIN_PROBLEMS = {
  // --- Starting a sign-in (a form that names nothing usable is invalid; a domain or organization without SSO, not found)
  no_input: { kind: 'invalid', meaning: 'The sign-in form was sent without an email address or organization.' },
  email_invalid: { kind: 'invalid', meaning: 'The email address entered is not one (name@company.com).' },
  domain_unknown: { kind: 'not_found', meaning: 'No enabled SSO connection serves the email domain entered.' },
  org_no_sso: { kind: 'not_found', meaning: 'The organization named has no enabled SSO connection.' },
  discovery_missing: { kind: 'invalid', meaning: "The connection's IdP was never discovered; an admin should run the connection's test." },

  // --- The response coming back to trackgate
  state_missing: { kind: 'invalid', meaning: 'A response came to the callback without a state: no sign-in of this browser asked for it.' },
  login_incomplete: { kind: 'invalid', meaning: 'The IdP answered with an error to a response trackgate cannot tie to a sign-in.' },
  state_unknown: { kind: 'invalid', meaning: 'The sign-in response was already used, or its sign-in expired.' },
  transaction_expired: { kind: 'invalid', meaning: 'The sign-in took longer than its few minutes.' },
  binding_mismatch: { kind: 'invalid', meaning: 'The response came to another browser than the one that started the sign-in (or its cookies were blocked).' },
  connection_disabled: { kind: 'invalid', meaning: 'The SSO connection, or its organization, was disabled or deleted during the sign-in.' },
  unexpected_response: { kind: 'invalid', meaning: 'The response is not of the flow the connection uses (an ID token on the code flow, no PKCE verifier).' },
  invalid_callback: { kind: 'invalid', meaning: 'The response is not a valid authorization response.' },
  idp_error: { kind: 'invalid', meaning: 'The IdP answered the sign-in with an error (access_denied, ...); the message names it.' },
  response_issuer_missing: { kind: 'invalid', meaning: 'The IdP announces that it names itself in responses ("iss"), but the response does not.' },
  response_issuer_mismatch: { kind: 'invalid', meaning: "The response names another issuer than the connection's." },

  // --- The code exchange
  token_endpoint_unreachable: { kind: 'invalid', meaning: "The IdP's token endpoint could not be reached." },
  token_endpoint_timeout: { kind: 'invalid', meaning: "The IdP's token endpoint did not answer in time." },
  token_endpoint_too_large: { kind: 'invalid', meaning: "The IdP's token endpoint answered with a document larger than trackgate's limit." },
  token_endpoint_not_json: { kind: 'invalid', meaning: "The IdP's token endpoint did not answer with JSON." },
  token_request_failed: { kind: 'invalid', meaning: 'The IdP refused to exchange the authorization code.' },
  id_token_missing: { kind: 'invalid', meaning: 'The IdP answered without an ID token (no "openid" scope, or the implicit grant is not allowed).' },

  // --- The ID token
  id_token_malformed: { kind: 'invalid', meaning: 'The ID token is not a well-formed signed JWT.' },
  id_token_unsigned: { kind: 'invalid', meaning: 'The ID token is not signed (alg "none").' },
  id_token_alg_not_allowed: { kind: 'invalid', meaning: "The ID token is signed with an algorithm the IdP does not announce, or a shared-secret one." },
  id_token_invalid: { kind: 'invalid', meaning: 'The ID token could not be verified, for a reason no more specific code names.' },
  id_token_expired: { kind: 'invalid', meaning: 'The ID token has expired (or the clocks of the IdP and trackgate disagree).' },
  id_token_claim_invalid: { kind: 'invalid', meaning: 'A claim of the ID token is invalid (or contains a NUL character).' },
  signature_invalid: { kind: 'invalid', meaning: "The ID token's signature does not verify with the IdP's published keys." },
  kid_missing: { kind: 'invalid', meaning: 'The ID token does not name its signing key, and the IdP publishes several.' },
  key_not_found: { kind: 'invalid', meaning: 'The ID token was signed with a key the IdP does not publish.' },
  jwks_unreachable: { kind: 'invalid', meaning: "The IdP's signing keys (jwks_uri) could not be fetched." },
  jwks_timeout: { kind: 'invalid', meaning: "The IdP's jwks_uri did not answer in time." },
  jwks_too_large: { kind: 'invalid', meaning: "The IdP's jwks_uri answered with a document larger than trackgate's limit." },
  jwks_not_json: { kind: 'invalid', meaning: "The IdP's jwks_uri did not answer with JSON." },
  jwks_invalid: { kind: 'invalid', meaning: "The IdP's jwks_uri does not hold a valid key set." },
  issuer_mismatch: { kind: 'invalid', meaning: "The ID token's issuer is not the connection's." },
  tenant_missing: { kind: 'invalid', meaning: 'The ID token of a multi-tenant Azure AD issuer has no tenant ("tid").' },
  tenant_not_allowed: { kind: 'invalid', meaning: "The user's Azure AD tenant is not among the connection's allowed tenant IDs." },
  audience_mismatch: { kind: 'invalid', meaning: "The ID token is not for this connection's client ID." },
  azp_missing: { kind: 'invalid', meaning: 'The ID token names several audiences but no authorized party ("azp").' },
  azp_mismatch: { kind: 'invalid', meaning: 'The ID token was issued to another application ("azp").' },
  exp_missing: { kind: 'invalid', meaning: 'The ID token has no expiry ("exp").' },
  iat_missing: { kind: 'invalid', meaning: 'The ID token has no issue time ("iat").' },
  iat_in_future: { kind: 'invalid', meaning: 'The ID token was issued in the future: the clocks of the IdP and trackgate disagree.' },
  nonce_mismatch: { kind: 'invalid', meaning: 'The ID token has no nonce, or one of another sign-in (a replayed or foreign token).' },
  sub_missing: { kind: 'invalid', meaning: 'The ID token has no subject ("sub").' },
  email_missing: { kind: 'invalid', meaning: 'A new account needs an email, and the ID token carries no usable one in the mapped claim.' },

  // --- A SAML response (src/sso/saml)
  saml_response_missing: { kind: 'invalid', meaning: 'A POST came to the SAML ACS without a SAMLResponse.' },
  saml_response_invalid: { kind: 'invalid', meaning: 'The SAML response is malformed or could not be verified, for a reason no more specific code names.' },
  saml_status_error: { kind: 'invalid', meaning: 'The IdP answered the SAML request with an error status; the message names it.' },
  saml_signature_invalid: { kind: 'invalid', meaning: "The SAML response or assertion is not signed as the connection requires, or not by one of the IdP's certificates (this includes a second, unsigned assertion beside a signed one)." },
  saml_in_response_to_unknown: { kind: 'invalid', meaning: 'The SAML response answers no pending sign-in of this connection (already used, expired, or never asked for).' },
  saml_idp_initiated_refused: { kind: 'invalid', meaning: 'The SAML response answers no request (IdP-initiated), and the connection does not allow IdP-initiated sign-in.' },
  saml_expired: { kind: 'invalid', meaning: "The SAML assertion is expired or not yet valid (or the clocks of the IdP and trackgate disagree)." },
  saml_audience_mismatch: { kind: 'invalid', meaning: "The SAML assertion is for another service provider (its Audience is not this connection's SP entity ID)." },
  saml_recipient_mismatch: { kind: 'invalid', meaning: "The SAML assertion was issued for another ACS URL (its Recipient is not this connection's)." },
  saml_issuer_mismatch: { kind: 'invalid', meaning: "The SAML assertion's Issuer is not the connection's IdP entity ID." },
  saml_assertion_replayed: { kind: 'invalid', meaning: 'The SAML assertion was already used to sign in.' },
  saml_nameid_missing: { kind: 'invalid', meaning: 'The SAML assertion has no NameID.' },
  saml_comment_in_assertion: { kind: 'invalid', meaning: 'The SAML assertion holds an XML comment, which signatures do not cover (the NameID comment-injection attack); it is refused.' },
  saml_in_response_to_mismatch: { kind: 'invalid', meaning: "The SAML assertion's SubjectConfirmationData answers another request than its Response's InResponseTo (or one names a request and the other none): an assertion carried to another sign-in." },
  saml_doctype: { kind: 'invalid', meaning: 'The SAML response declares a DOCTYPE or entities, which SAML responses never need; it is refused.' },

  // --- The account (refusals)
  no_account: { kind: 'forbidden', meaning: 'The person has no account in the organization, and automatic provisioning (JIT) is off.' },
  identity_orphaned: { kind: 'forbidden', meaning: 'The sign-in identity is linked to an account that no longer exists.' },
  email_unavailable: { kind: 'forbidden', meaning: 'The email cannot be used for a new account in the organization.' },
  user_deactivated: { kind: 'forbidden', meaning: 'The account is deactivated.' },
  operator_not_linkable: { kind: 'forbidden', meaning: "The instance operator's account cannot be signed in to through an organization's SSO connection." },
  account_linked_elsewhere: { kind: 'forbidden', meaning: 'The account with this email is already linked to another sign-in identity; an account is never moved to a new identity by email.' },
  email_unverified: { kind: 'forbidden', meaning: 'The IdP does not vouch for the email, so it cannot link the identity to an existing account.' },
  email_domain_not_served: { kind: 'forbidden', meaning: "The email's domain is not one the connection serves, so it cannot link the identity to an existing account." },
  login_race: { kind: 'forbidden', meaning: 'Another sign-in of the same identity was being completed at the same moment.' },
} as const satisfies Record<string, { readonly kind: ErrorKind; readonly meaning: string }>;

/** A code from LOGIN_PROBLEMS: the only codes an OidcLoginError can carry. */
export type LoginProblemCode = keyof typeof LOGIN_PROBLEMS;
