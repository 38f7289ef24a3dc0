import { z } from 'zod';
import { roleOut } from '../users/users.responses.ts';

// The API's answers about SSO connections and linked identities (see orgs.responses.ts for why these live apart
// from the routes).

const problemOut = z.object({ field: z.string(), code: z.string(), message: z.string() });

export const connectionOut = z.object({
  id: z.string(),
  org: z.string(),
  issuer: z.string(),
  client_id: z.string(),
  flow: z.enum(['implicit', 'code']),
  response_mode: z.enum(['form_post', 'fragment']),
  has_client_secret: z.boolean(),
  scopes: z.array(z.string()),
  claims: z.object({ email: z.string(), name: z.string(), username: z.string(), groups: z.string() }),
  domains: z.array(z.string()),
  group_roles: z.array(z.object({ group: z.string(), team: z.string(), role: roleOut })),
  jit: z.boolean(),
  allowed_tenant_ids: z.array(z.string()),
  enabled: z.boolean(),
  callback_uri: z.string().describe('register exactly this as the sign-in redirect / callback URI in the IdP'),
  discovered_issuer: z.string().nullable().describe('the issuer as the IdP\'s discovery document says it (an Azure AD template holds {tenantid})'),
  discovered_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  kind: z.enum(['oidc', 'saml']).describe('the protocol: OpenID Connect, or SAML 2.0 (then `saml` holds its settings and the SP URLs to register)'),
  saml: z
    .object({
      entity_id: z.string().describe("the IdP's entity ID (the Issuer of its responses)"),
      sso_url: z.string(),
      certificates: z.array(z.object({ fingerprint_sha256: z.string(), subject: z.string(), not_after: z.string(), expired: z.boolean() })),
      metadata_url: z.string().nullable(),
      want_assertions_signed: z.boolean(),
      want_response_signed: z.boolean(),
      allow_idp_initiated: z.boolean(),
      sp_entity_id: z.string().describe("trackgate's entity ID for this connection: the audience (Audience URI / Identifier) to register in the IdP"),
      acs_url: z.string().describe('the Assertion Consumer Service URL (HTTP-POST) to register in the IdP'),
      sp_metadata_url: z.string().describe("trackgate's SP metadata for this connection"),
    })
    .nullable(),
  warnings: z.array(problemOut).describe('why the group rules may do nothing (groups scope not requested, the IdP\'s groups claim not configured, group names the IdP never sends); saved anyway'),
});

/** POST /orgs/:org/sso/:id/test: the result of rerunning discovery. */
export const connectionTestOut = z.object({
  ok: z.boolean(),
  problems: z.array(problemOut),
  discovered_issuer: z.string().nullable(),
  templated_issuer: z.boolean(),
  signing_algorithms: z.array(z.string()),
  callback_uri: z.string(),
  tested_at: z.string(),
});

export const identityOut = z.object({
  id: z.string(),
  connection_id: z.string(),
  issuer: z.string(),
  subject: z.string(),
  tenant_id: z.string().nullable(),
  object_id: z.string().nullable(),
  created_at: z.string(),
  last_login_at: z.string(),
});
