import type { Actor } from '../../auth/actor.ts';
import { AppError, errors } from '../../errors/app-error.ts';
import { createKeyBody, rotateKeyBody } from '../../keys/keys.routes.ts';
import type { KeyView } from '../../keys/keys.service.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { parseForm } from '../form.ts';
import { LIST_PAGE } from '../prg.ts';
import type { FormAction, Params, Rerender } from '../prg.ts';
import type { WebRoutesDeps } from '../web-deps.ts';

/** The keys of each keyed service account the viewer manages (an account it only sees, or a keyless one, has none here). */
export async function keysOf(d: WebRoutesDeps, actor: Actor, accounts: readonly ServiceAccountView[]): Promise<Map<string, KeyView[]>> {
  const out = new Map<string, KeyView[]>();
  for (const sa of accounts) {
    if (sa.keyless) continue;
    try {
      out.set(sa.id, (await d.serviceAccounts.listKeys(actor, sa.id, LIST_PAGE)).items);
    } catch (err) {
      // Not allowed to manage it (the service decides): no keys section for it.
      if (!(err instanceof AppError && (err.kind === 'forbidden' || err.kind === 'not_found'))) throw err;
    }
  }
  return out;
}

/** The team page's key forms of its service accounts: a new key (shown once), rotate with a grace period, revoke. */
export function registerServiceAccountKeyActions(d: WebRoutesDeps, action: FormAction, render: Rerender<'/teams/:team'>): void {
  const teamUrl = (params: Params<'/teams/:team'>) => `/teams/${encodeURIComponent(params.team)}`;
  /** The account, as a form of this team's page may name it: an account of another team is not found here. */
  const accountOfTeam = async (actor: Actor, params: Params<'/teams/:team/service-accounts/:id'>) => {
    const sa = await d.serviceAccounts.get(actor, params.id);
    if (sa.team !== params.team) throw errors.notFound(`service account "${params.id}" of team "${params.team}"`);
    return sa;
  };
  /** The key, as a form of this account's block may name it: a key of anyone else is not found here. */
  const keyOfAccount = async (actor: Actor, params: Params<'/teams/:team/service-accounts/:id/keys/:keyId'>) => {
    const sa = await accountOfTeam(actor, params);
    const k = await d.keys.get(actor, params.keyId);
    if (k.owner.type !== 'service_account' || k.owner.id !== sa.id) throw errors.notFound(`API key "${params.keyId}" of service account "${sa.username}"`);
    return { sa, k };
  };
  action(
    '/teams/:team/service-accounts/:id/keys',
    teamUrl,
    async (req, v, params) => {
      const sa = await accountOfTeam(v.actor, params);
      const k = await d.serviceAccounts.createKey(v.actor, sa.id, parseForm(createKeyBody, req));
      return { notice: `A new key was made for ${sa.username}.`, newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: sa.username } };
    },
    render,
  );
  action(
    '/teams/:team/service-accounts/:id/keys/:keyId/rotate',
    teamUrl,
    async (req, v, params) => {
      const { sa, k: old } = await keyOfAccount(v.actor, params);
      const { grace_seconds, expires_in_days } = parseForm(rotateKeyBody, req);
      const k = await d.keys.rotate(v.actor, old.id, grace_seconds, { expiresInDays: expires_in_days });
      const until = k.previous.expires_at;
      return {
        notice: grace_seconds && until ? `Key ${old.key_id} of ${sa.username} was rotated; it keeps working until ${until.slice(0, 16).replace('T', ' ')} UTC.` : `Key ${old.key_id} of ${sa.username} was rotated and revoked.`,
        newKey: { key: k.key, key_id: k.key_id, name: k.name, expires_at: k.expires_at, owner: sa.username },
      };
    },
    render,
  );
  action(
    '/teams/:team/service-accounts/:id/keys/:keyId/revoke',
    teamUrl,
    async (req, v, params) => {
      const { sa, k } = await keyOfAccount(v.actor, params);
      await d.keys.revoke(v.actor, k.id);
      return { notice: `Key ${k.key_id} (${k.name}) of ${sa.username} was revoked: it stops working at once.` };
    },
    render,
  );
}
