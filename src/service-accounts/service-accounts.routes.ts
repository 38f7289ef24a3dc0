import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { nextCursorOut, pageBody, pageQuery, pageRequest } from '../http/pagination.ts';
import { fields } from '../http/validation.ts';
import { newKeyOut } from '../keys/keys.responses.ts';
import { createKeyBody, keysPageOut, keysPageQuery } from '../keys/keys.routes.ts';
import { serviceAccountOut } from './service-accounts.responses.ts';
import type { ServiceAccountsService } from './service-accounts.service.ts';

const createdOut = serviceAccountOut.extend({ key: newKeyOut.nullable().describe('its first key, shown this once; null for a keyless account') });
/** By username. */
const saPageQuery = pageQuery('service_accounts', ['string']);
const saPageOut = z.object({ service_accounts: z.array(serviceAccountOut), next_cursor: nextCursorOut });
const badPage = { description: 'bad limit or cursor' };
export const createBody = z.strictObject({
  name: fields.label,
  username: fields.entityName.optional().describe('default: derived from the name'),
  key_name: fields.label.optional(),
  expires_in_days: z.number().int().min(1).max(3650).optional(),
  keyless: z.boolean().optional().describe('federation only: no key now or ever; it authenticates through its federation rules (default false)'),
});
const enterpriseOnly = { description: 'not allowed: not an enterprise organization, or not an admin of the team / organization' };

export function registerServiceAccountRoutes(api: ApiRouter, sas: ServiceAccountsService): void {
  api.add(
    {
      method: 'post',
      path: '/teams/:team/service-accounts',
      summary: 'Create a service account on a team (team admin or org admin; enterprise plan). Its first key is in this response only',
      tag: 'service-accounts',
      auth: 'required',
      body: createBody,
      responses: { 201: { description: 'created', schema: createdOut }, 403: enterpriseOnly, 404: { description: 'no such team' }, 409: { description: 'username taken' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await sas.createForTeam(actor, params.team, body) }),
  );
  api.add(
    {
      method: 'get',
      path: '/teams/:team/service-accounts',
      summary: 'Service accounts of a team (its members and org admins), by username, a page at a time',
      tag: 'service-accounts',
      auth: 'required',
      query: saPageQuery,
      responses: { 200: { description: 'service accounts', schema: saPageOut }, 400: badPage, 404: { description: 'no such team' } },
    },
    async ({ actor, params, query }) => ({ status: 200, body: pageBody('service_accounts', 'service_accounts', await sas.listForTeam(actor, params.team, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/service-accounts',
      summary: 'Create an organization-scoped service account writing to a default team (org admin; enterprise plan)',
      tag: 'service-accounts',
      auth: 'required',
      body: createBody.extend({ default_team: fields.entityName }),
      responses: { 201: { description: 'created', schema: createdOut }, 403: enterpriseOnly, 409: { description: 'username taken' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await sas.createForOrg(actor, params.org, body) }),
  );
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/service-accounts',
      summary: 'Every service account of an organization (org admin), by username, a page at a time',
      tag: 'service-accounts',
      auth: 'required',
      query: saPageQuery,
      responses: { 200: { description: 'service accounts', schema: saPageOut }, 400: badPage },
    },
    async ({ actor, params, query }) => ({ status: 200, body: pageBody('service_accounts', 'service_accounts', await sas.listForOrg(actor, params.org, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'get',
      path: '/service-accounts/:id',
      summary: 'A service account (members of its team and org admins)',
      tag: 'service-accounts',
      auth: 'required',
      responses: { 200: { description: 'the service account', schema: serviceAccountOut }, 404: { description: 'no such service account' } },
    },
    async ({ actor, params }) => ({ status: 200, body: await sas.get(actor, params.id) }),
  );
  api.add(
    {
      method: 'patch',
      path: '/service-accounts/:id',
      summary: 'Rename a service account (its username stays)',
      tag: 'service-accounts',
      auth: 'required',
      body: z.strictObject({ name: fields.label }),
      responses: { 200: { description: 'renamed', schema: serviceAccountOut }, 403: { description: 'not an admin of its team or organization' }, 404: { description: 'no such service account' } },
    },
    async ({ actor, params, body }) => ({ status: 200, body: await sas.rename(actor, params.id, body.name) }),
  );
  api.add(
    {
      method: 'delete',
      path: '/service-accounts/:id',
      summary: 'Delete a service account; every key it has is revoked at once',
      tag: 'service-accounts',
      auth: 'required',
      responses: { 204: { description: 'deleted' }, 403: { description: 'not an admin of its team or organization' }, 404: { description: 'no such service account' } },
    },
    async ({ actor, params }) => {
      await sas.delete(actor, params.id);
      return undefined;
    },
  );
  api.add(
    {
      method: 'get',
      path: '/service-accounts/:id/keys',
      summary: 'Keys of a service account (never their secrets), oldest first, a page at a time; rotate and revoke them through /keys/:id',
      tag: 'service-accounts',
      auth: 'required',
      query: keysPageQuery,
      responses: { 200: { description: 'keys', schema: keysPageOut }, 400: badPage, 403: { description: 'not an admin of its team or organization' }, 404: { description: 'no such service account' } },
    },
    async ({ actor, params, query }) => ({ status: 200, body: pageBody('keys', 'keys', await sas.listKeys(actor, params.id, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'post',
      path: '/service-accounts/:id/keys',
      summary: 'Create another key for a service account; the secret is in this response only',
      tag: 'service-accounts',
      auth: 'required',
      body: createKeyBody,
      responses: {
        201: { description: 'created', schema: newKeyOut },
        403: { description: 'not an admin of its team or organization' },
        404: { description: 'no such service account' },
        409: { description: 'key_limit_reached: the account holds the most live keys allowed; service_account_keyless: the account is keyless' },
      },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await sas.createKey(actor, params.id, body) }),
  );
}
