import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { fields } from '../http/validation.ts';
import type { KeysService } from './keys.service.ts';

export const keyOut = z.object({
  id: z.string(),
  key_id: z.string(),
  name: z.string(),
  owner: z.object({ type: z.enum(['user', 'service_account']), id: z.string() }),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  rotated_from: z.string().nullable(),
});
export const newKeyOut = keyOut.extend({ key: z.string().describe('the secret; shown only in this response') });
export const createKeyBody = z.strictObject({ name: fields.label, expires_in_days: z.number().int().min(1).max(3650).optional() });

export function registerKeyRoutes(api: ApiRouter, keys: KeysService): void {
  api.add(
    { method: 'get', path: '/me/keys', summary: 'Your personal API keys (never their secrets)', tag: 'keys', auth: 'required', responses: { 200: { description: 'keys', schema: z.object({ keys: z.array(keyOut) }) } } },
    async ({ actor }) => ({ status: 200, body: { keys: await keys.listMine(actor) } }),
  );
  api.add(
    {
      method: 'post',
      path: '/me/keys',
      summary: 'Create a personal API key; the secret is in this response only',
      tag: 'keys',
      auth: 'required',
      body: createKeyBody,
      responses: { 201: { description: 'created', schema: newKeyOut }, 403: { description: 'personal keys disabled by policy' } },
    },
    async ({ actor, body }) => ({ status: 201, body: await keys.createPersonal(actor, body) }),
  );
  api.add(
    { method: 'get', path: '/keys/:id', summary: 'A key you may manage', tag: 'keys', auth: 'required', responses: { 200: { description: 'the key', schema: keyOut }, 404: { description: 'no such key' } } },
    async ({ actor, params }) => ({ status: 200, body: await keys.get(actor, params.id!) }),
  );
  api.add(
    {
      method: 'post',
      path: '/keys/:id/rotate',
      summary: 'Issue a replacement key; the old one keeps working for grace_seconds (0 revokes it now)',
      tag: 'keys',
      auth: 'required',
      body: z.strictObject({ grace_seconds: z.number().int().min(0).max(30 * 86_400).default(0) }),
      responses: { 201: { description: 'the new key', schema: newKeyOut.extend({ previous: keyOut }) }, 404: { description: 'no such key' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await keys.rotate(actor, params.id!, body.grace_seconds) }),
  );
  api.add(
    { method: 'delete', path: '/keys/:id', summary: 'Revoke a key now', tag: 'keys', auth: 'required', responses: { 204: { description: 'revoked' }, 404: { description: 'no such key' } } },
    async ({ actor, params }) => {
      await keys.revoke(actor, params.id!);
      return undefined;
    },
  );
}
