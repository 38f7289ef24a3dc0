import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { fields } from '../http/validation.ts';
import { orgOut } from './orgs.responses.ts';
import type { OrgsService } from './orgs.service.ts';

export const policies = z.strictObject({
  require_sso: z.boolean().optional(),
  disable_personal_keys: z.boolean().optional(),
  max_key_lifetime_days: z.number().int().min(1).max(3650).nullable().optional(),
});

export function registerOrgRoutes(api: ApiRouter, orgs: OrgsService): void {
  api.add(
    {
      method: 'post',
      path: '/orgs',
      summary: 'Create an organization (instance operator only)',
      tag: 'organizations',
      auth: 'required',
      body: z.strictObject({ slug: fields.slug, name: fields.displayName, plan: fields.plan.default('standard') }),
      responses: { 201: { description: 'created', schema: orgOut }, 403: { description: 'not the instance operator' }, 409: { description: 'slug taken' } },
    },
    async ({ body, actor }) => ({ status: 201, body: await orgs.create(actor, body) }),
  );
  api.add(
    {
      method: 'get',
      path: '/orgs/:org',
      summary: 'An organization',
      tag: 'organizations',
      auth: 'required',
      responses: { 200: { description: 'the organization', schema: orgOut }, 404: { description: 'no such organization (or not yours)' } },
    },
    async ({ params, actor }) => ({ status: 200, body: await orgs.get(actor, params.org) }),
  );
  api.add(
    {
      method: 'patch',
      path: '/orgs/:org',
      summary: 'Rename an organization or change its policies (org admin; plan: instance operator)',
      tag: 'organizations',
      auth: 'required',
      body: z.strictObject({ name: fields.displayName.optional(), plan: fields.plan.optional(), policies: policies.optional() }),
      responses: { 200: { description: 'updated', schema: orgOut }, 403: { description: 'not an admin' }, 404: { description: 'no such organization' } },
    },
    async ({ params, body, actor }) => ({ status: 200, body: await orgs.update(actor, params.org, body) }),
  );
}
