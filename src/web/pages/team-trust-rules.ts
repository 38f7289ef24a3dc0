import { z } from 'zod';
import type { Actor } from '../../auth/actor.ts';
import { AppError, errors } from '../../errors/app-error.ts';
import { createFederatedCredentialBody } from '../../federation/federated-credentials.routes.ts';
import type { FederatedCredentialView } from '../../federation/federated-credentials.service.ts';
import { GITHUB_ACTIONS_ISSUER } from '../../federation/trust-rules.ts';
import { parse } from '../../http/validation.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { formInput, formOf } from '../form.ts';
import type { FormAction, Params, Rerender } from '../prg.ts';
import { ISSUER_PRESETS } from '../views/team-trust-rules.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** The add-a-rule form's page-only field: where the issuer comes from. */
const issuerPreset = z.object({ issuer_preset: z.enum(ISSUER_PRESETS, { error: 'choose GitHub Actions, Kubernetes or another issuer' }) });

/**
 * The conditions box: one `claim=value` per line (the value is everything after the first `=`). Only lines
 * and fields: what they say is ruleProblems' to judge, as for the API.
 */
export function parseConditionLines(text: string | undefined): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  for (const [i, line] of (text ?? '').split(/\r?\n/).entries()) {
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    const claim = eq === -1 ? '' : line.slice(0, eq).trim();
    if (claim === '') throw errors.validation(`conditions, line ${i + 1}: write "claim=value"`, [{ field: 'conditions', code: 'invalid_format', message: `line ${i + 1}: write "claim=value"` }]);
    if (Object.hasOwn(out, claim)) throw errors.validation(`conditions, line ${i + 1}: "${claim}" is given twice`, [{ field: 'conditions', code: 'invalid_format', message: `line ${i + 1}: "${claim}" is given twice` }]);
    Object.defineProperty(out, claim, { value: line.slice(eq + 1).trim(), enumerable: true, writable: true, configurable: true });
    any = true;
  }
  return any ? out : undefined;
}

/** The trust rules of each service account the viewer manages (an account it only sees has none here). */
export async function trustRulesOf(d: WebRoutesDeps, actor: Actor, accounts: readonly ServiceAccountView[]): Promise<Map<string, FederatedCredentialView[]>> {
  const out = new Map<string, FederatedCredentialView[]>();
  for (const sa of accounts) {
    try {
      out.set(sa.id, await d.federatedCredentials.list(actor, sa.id));
    } catch (err) {
      // Not allowed to manage it (the service decides): no rules section for it.
      if (!(err instanceof AppError && (err.kind === 'forbidden' || err.kind === 'not_found'))) throw err;
    }
  }
  return out;
}

/** The team page's trust-rule forms: add one to a service account of the team, delete one. */
export function registerTrustRuleActions(d: WebRoutesDeps, action: FormAction, render: Rerender<'/teams/:team'>): void {
  const teamUrl = (params: Params<'/teams/:team'>) => `/teams/${encodeURIComponent(params.team)}`;
  /** The account, as a form of this team's page may name it: an account of another team is not found here. */
  const accountOfTeam = async (actor: Actor, params: Params<'/teams/:team/service-accounts/:id'>) => {
    const sa = await d.serviceAccounts.get(actor, params.id);
    if (sa.team !== params.team) throw errors.notFound(`service account "${params.id}" of team "${params.team}"`);
    return sa;
  };
  action(
    '/teams/:team/service-accounts/:id/federated-credentials',
    teamUrl,
    async (req, v, params) => {
      const sa = await accountOfTeam(v.actor, params);
      const form = formOf(req);
      const { issuer_preset } = parse(issuerPreset, { issuer_preset: form.issuer_preset ?? 'github' }, 'form');
      const fields = formInput(createFederatedCredentialBody.omit({ conditions: true }), form);
      if (issuer_preset === 'github') {
        if (fields.issuer !== undefined && fields.issuer !== GITHUB_ACTIONS_ISSUER) {
          throw errors.validation('issuer: GitHub Actions has one issuer; for another, choose Kubernetes or Other', [{ field: 'issuer', code: 'preset_mismatch', message: 'GitHub Actions has one issuer; for another, choose Kubernetes or Other' }]);
        }
        fields.issuer = GITHUB_ACTIONS_ISSUER;
      } else if (fields.issuer === undefined) throw errors.validation('issuer: give the issuer URL of your cluster or provider', [{ field: 'issuer', code: 'required', message: 'give the issuer URL of your cluster or provider' }]);
      const input = parse(createFederatedCredentialBody, { ...fields, conditions: parseConditionLines(form.conditions) }, 'form');
      const rule = await d.federatedCredentials.create(v.actor, sa.id, input);
      return { notice: `Trust rule "${rule.name}" was added to ${sa.username}: workloads with ${rule.issuer} tokens for subject ${rule.subject} can act as it.` };
    },
    render,
  );
  action(
    '/teams/:team/service-accounts/:id/federated-credentials/:credentialId/delete',
    teamUrl,
    async (req, v, params) => {
      const sa = await accountOfTeam(v.actor, params);
      const rule = await d.federatedCredentials.get(v.actor, sa.id, params.credentialId);
      await d.federatedCredentials.delete(v.actor, sa.id, rule.id);
      return { notice: `Trust rule "${rule.name}" of ${sa.username} was deleted; the access tokens it issued stopped working.` };
    },
    render,
  );
}
