import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { fields } from '../http/validation.ts';
import type { ScimTokensService } from './scim-tokens.service.ts';

export const scimTokenOut = z.object({
  id: z.string(),
  name: z.string(),
  token_id: z.string().describe('the token\'s prefix and first characters, to tell tokens apart'),
  created_at: z.string(),
  last_used_at: z.string().nullable().describe('updated at most once a minute'),
});
const scimTokensOut = z.object({ tokens: z.array(scimTokenOut), base_url: z.string().describe('the SCIM base URL to paste into the IdP') });
const newScimTokenOut = scimTokenOut.extend({ token: z.string().describe('the secret; shown only in this response'), base_url: z.string() });
/** The body of a new SCIM token (the admin page's form parses with it too). */
export const createScimTokenBody = z.strictObject({ name: fields.label });

/** The organization's SCIM tokens on the management API (org admins). */
export function registerScimTokenRoutes(api: ApiRouter, tokens: ScimTokensService, baseUrl: string): void {
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/scim/tokens',
      summary: 'The organization\'s SCIM tokens (never their secrets), oldest first, and the SCIM base URL (org admin)',
      tag: 'scim',
      auth: 'required',
      responses: { 200: { description: 'tokens', schema: scimTokensOut }, 403: { description: 'not an admin' }, 404: { description: 'no such organization' } },
    },
    async ({ actor, params }) => ({ status: 200, body: { tokens: await tokens.list(actor, params.org), base_url: baseUrl } }),
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/scim/tokens',
      summary: 'Create a SCIM token for the organization\'s IdP; the secret is in this response only (org admin)',
      tag: 'scim',
      auth: 'required',
      body: createScimTokenBody,
      responses: { 201: { description: 'created', schema: newScimTokenOut }, 403: { description: 'not an admin' }, 409: { description: 'key_limit_reached: the organization holds the most live SCIM tokens allowed' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: { ...(await tokens.create(actor, params.org, body.name)), base_url: baseUrl } }),
  );
  api.add(
    {
      method: 'delete',
      path: '/orgs/:org/scim/tokens/:id',
      summary: 'Revoke a SCIM token now: the IdP\'s next request with it is refused (org admin)',
      tag: 'scim',
      auth: 'required',
      responses: { 204: { description: 'revoked' }, 403: { description: 'not an admin' }, 404: { description: 'no such token' } },
    },
    async ({ actor, params }) => {
      await tokens.revoke(actor, params.org, params.id);
      return undefined;
    },
  );
}
