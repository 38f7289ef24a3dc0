import { z } from 'zod';
import { errors } from '../errors/app-error.ts';
import type { ApiRouter } from '../http/api-router.ts';
import { fields } from '../http/validation.ts';
import { federatedCredentialOut } from './federated-credentials.responses.ts';
import type { FederatedCredentialsService } from './federated-credentials.service.ts';

/** A rule as the API takes it; what it may say beyond these shapes is ruleProblems' (400 with `problems`). */
export const createFederatedCredentialBody = z.strictObject({
  name: fields.label,
  issuer: z.string().trim().min(1, 'must not be empty').max(512, 'must be at most 512 characters').describe("the workload tokens' iss, exactly (e.g. https://token.actions.githubusercontent.com)"),
  audience: z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional().describe("the aud the token must carry; default: the organization's slug"),
  subject: z.string().trim().min(1, 'must not be empty').max(512, 'must be at most 512 characters').describe('the sub: exact, or a prefix ending in * (repo:acme/train:*)'),
  conditions: z.record(z.string().max(64, 'a claim name is at most 64 characters'), z.string()).optional().describe('other claims, each equal to its value (repository_owner: acme)'),
});
const listOut = z.object({ federated_credentials: z.array(federatedCredentialOut) });
const notManager = { description: 'not an org admin or an admin of the account\'s team (creating: or not an enterprise organization)' };
const noAccount = { description: 'no such service account (or trust rule)' };

export function registerFederatedCredentialRoutes(api: ApiRouter, rules: FederatedCredentialsService): void {
  api.add(
    {
      method: 'get',
      path: '/service-accounts/:id/federated-credentials',
      summary: 'Trust rules of a service account: which workload tokens may be exchanged at /oidc/token for its access tokens',
      tag: 'service-accounts',
      auth: 'required',
      responses: { 200: { description: 'its trust rules, oldest first', schema: listOut }, 403: notManager, 404: noAccount },
    },
    async ({ actor, params }) => ({ status: 200, body: { federated_credentials: await rules.list(actor, params.id) } }),
  );
  api.add(
    {
      method: 'post',
      path: '/service-accounts/:id/federated-credentials',
      summary: 'Add a trust rule to a service account (org admin or admin of its team; enterprise plan; at most 10 per account)',
      tag: 'service-accounts',
      auth: 'required',
      body: createFederatedCredentialBody,
      responses: {
        201: { description: 'created', schema: federatedCredentialOut },
        400: { description: 'validation_failed: what the rule may not say, field by field (error.problems), e.g. a shared issuer without its owner pinned' },
        403: notManager,
        404: noAccount,
        409: { description: 'too_many_federated_credentials: the account has 10 rules' },
      },
    },
    async ({ actor, params, body, req }) => {
      // zod's record leaves a "__proto__" key out of what it parses (against prototype pollution): the condition
      // would vanish and the rule be saved wider than written. Refused, from the body as it came.
      const raw = (req.body as { conditions?: unknown } | undefined)?.conditions;
      if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, '__proto__')) {
        const message = '"__proto__" cannot be a condition\'s claim name';
        throw errors.validation(`the trust rule was not saved: conditions: ${message}`, [{ field: 'conditions', code: 'trust_rule', message }]);
      }
      return { status: 201, body: await rules.create(actor, params.id, body) };
    },
  );
  api.add(
    {
      method: 'get',
      path: '/service-accounts/:id/federated-credentials/:credentialId',
      summary: 'A trust rule of a service account',
      tag: 'service-accounts',
      auth: 'required',
      responses: { 200: { description: 'the trust rule', schema: federatedCredentialOut }, 403: notManager, 404: noAccount },
    },
    async ({ actor, params }) => ({ status: 200, body: await rules.get(actor, params.id, params.credentialId) }),
  );
  api.add(
    {
      method: 'delete',
      path: '/service-accounts/:id/federated-credentials/:credentialId',
      summary: 'Delete a trust rule; every live access token it issued is revoked at once',
      tag: 'service-accounts',
      auth: 'required',
      responses: { 204: { description: 'deleted' }, 403: notManager, 404: noAccount },
    },
    async ({ actor, params }) => {
      await rules.delete(actor, params.id, params.credentialId);
      return undefined;
    },
  );
}
