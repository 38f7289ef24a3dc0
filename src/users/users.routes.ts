import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { nextCursorOut, pageBody, pageQuery, pageRequest } from '../http/pagination.ts';
import { fields } from '../http/validation.ts';
import { meOut, userOut } from './users.responses.ts';
import type { UsersService } from './users.service.ts';

export const themeBody = z.strictObject({ theme: z.enum(['light', 'dark', 'system'], { error: 'must be light, dark or system' }) });
export const provisionUserBody = z.strictObject({ email: fields.email, username: fields.entityName, role: fields.role.default('member'), display_name: fields.displayName.optional() });
export const updateUserBody = z.strictObject({ role: fields.role.optional(), status: z.enum(['active', 'deactivated'], { error: 'must be active or deactivated' }).optional(), display_name: fields.displayName.optional() }).refine((b) => Object.keys(b).length > 0, { error: 'nothing to change: send role, status or display_name' });

export function registerUserRoutes(api: ApiRouter, users: UsersService): void {
  api.add(
    { method: 'get', path: '/me', summary: 'Who the credential belongs to', tag: 'me', auth: 'required', responses: { 200: { description: 'the caller', schema: meOut } } },
    async ({ actor }) => ({ status: 200, body: await users.me(actor.principal) }),
  );
  api.add(
    {
      method: 'patch',
      path: '/me',
      summary: 'Change your preferences',
      tag: 'me',
      auth: 'required',
      body: themeBody,
      responses: { 200: { description: 'the caller', schema: meOut } },
    },
    async ({ actor, body }) => {
      await users.setTheme(actor, body.theme);
      return { status: 200, body: await users.me(actor.principal) };
    },
  );
  api.add(
    {
      method: 'get',
      path: '/orgs/:org/users',
      summary: 'Users of an organization, by username, a page at a time',
      tag: 'users',
      auth: 'required',
      query: pageQuery('users', ['string']),
      responses: { 200: { description: 'users', schema: z.object({ users: z.array(userOut), next_cursor: nextCursorOut }) }, 400: { description: 'bad limit or cursor' } },
    },
    async ({ actor, params, query }) => ({ status: 200, body: pageBody('users', 'users', await users.list(actor, params.org, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/users',
      summary: 'Pre-provision a user (org admin)',
      tag: 'users',
      auth: 'required',
      body: provisionUserBody,
      responses: { 201: { description: 'created', schema: userOut }, 409: { description: 'email or username taken' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await users.provision(actor, params.org, body) }),
  );
  api.add(
    { method: 'get', path: '/orgs/:org/users/:username', summary: 'A user of an organization', tag: 'users', auth: 'required', responses: { 200: { description: 'the user', schema: userOut }, 404: { description: 'no such user' } } },
    async ({ actor, params }) => ({ status: 200, body: await users.get(actor, params.org, params.username) }),
  );
  api.add(
    {
      method: 'patch',
      path: '/orgs/:org/users/:username',
      summary: 'Change a user\'s role, status or name (org admin)',
      tag: 'users',
      auth: 'required',
      body: updateUserBody,
      responses: { 200: { description: 'updated', schema: userOut }, 404: { description: 'no such user' }, 409: { description: 'would leave no admin' } },
    },
    async ({ actor, params, body }) => ({ status: 200, body: await users.update(actor, params.org, params.username, body) }),
  );
  api.add(
    {
      method: 'delete',
      path: '/orgs/:org/users/:username',
      summary: 'Deactivate a user (org admin): their keys and sessions stop working',
      tag: 'users',
      auth: 'required',
      responses: { 204: { description: 'deactivated' }, 404: { description: 'no such user' } },
    },
    async ({ actor, params }) => {
      await users.deactivate(actor, params.org, params.username);
      return undefined;
    },
  );
}
