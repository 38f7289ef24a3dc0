import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { nextCursorOut, pageBody, pageQuery, pageRequest } from '../http/pagination.ts';
import { fields } from '../http/validation.ts';
import { keyOut, newKeyOut } from './keys.responses.ts';
import type { KeysService } from './keys.service.ts';

/** Keys are listed oldest first, by creation time and id. */
export const keysPageQuery = pageQuery('keys', ['string', 'string']);
export const keysPageOut = z.object({ keys: z.array(keyOut), next_cursor: nextCursorOut });
export const createKeyBody = z.strictObject({ name: fields.label, expires_in_days: z.number().int().min(1).max(3650).optional() });
export const rotateKeyBody = z.strictObject({ grace_seconds: z.number().int().min(0).max(30 * 86_400).default(0), expires_in_days: z.number().int().min(1).max(3650).optional() });

export function registerKeyRoutes(api: ApiRouter, keys: KeysService): void {
  api.add(
    {
      method: 'get',
      path: '/me/keys',
      summary: 'Your personal API keys (never their secrets), oldest first, a page at a time',
      tag: 'keys',
      auth: 'required',
      query: keysPageQuery,
      responses: { 200: { description: 'keys', schema: keysPageOut }, 400: { description: 'bad limit or cursor' } },
    },
    async ({ actor, query }) => ({ status: 200, body: pageBody('keys', 'keys', await keys.listMine(actor, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'post',
      path: '/me/keys',
      summary: 'Create a personal API key; the secret is in this response only',
      tag: 'keys',
      auth: 'required',
      body: createKeyBody,
      responses: { 201: { description: 'created', schema: newKeyOut }, 403: { description: 'personal keys disabled by policy' }, 409: { description: 'key_limit_reached: the owner holds the most live keys allowed' } },
    },
    async ({ actor, body }) => ({ status: 201, body: await keys.createPersonal(actor, body) }),
  );
  api.add(
    { method: 'get', path: '/keys/:id', summary: 'A key you may manage', tag: 'keys', auth: 'required', responses: { 200: { description: 'the key', schema: keyOut }, 404: { description: 'no such key' } } },
    async ({ actor, params }) => ({ status: 200, body: await keys.get(actor, params.id) }),
  );
  api.add(
    {
      method: 'post',
      path: '/keys/:id/rotate',
      summary:
        'Issue a replacement key; the old one keeps working for grace_seconds (0 revokes it now). A live key is replaced once; the replacement obeys the organization\'s key policies (its lifetime: the old key\'s, or expires_in_days, within the maximum)',
      tag: 'keys',
      auth: 'required',
      body: rotateKeyBody,
      responses: {
        201: { description: 'the new key', schema: newKeyOut.extend({ previous: keyOut }) },
        400: { description: 'expires_in_days beyond the organization\'s maximum key lifetime' },
        403: { description: 'personal_keys_disabled (policy) or enterprise_feature (a service-account key on another plan)' },
        404: { description: 'no such key' },
        409: { description: 'key_revoked, key_expired, key_already_rotated, owner_deactivated, or key_limit_reached' },
      },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await keys.rotate(actor, params.id, body.grace_seconds, { expiresInDays: body.expires_in_days }) }),
  );
  api.add(
    { method: 'delete', path: '/keys/:id', summary: 'Revoke a key now', tag: 'keys', auth: 'required', responses: { 204: { description: 'revoked' }, 404: { description: 'no such key' } } },
    async ({ actor, params }) => {
      await keys.revoke(actor, params.id);
      return undefined;
    },
  );
}
