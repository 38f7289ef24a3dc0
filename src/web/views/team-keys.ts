import type { KeyView } from '../../keys/keys.service.ts';
import { html, notices } from '../../html/html.ts';
import type { Html, Notices } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { fieldProblem } from './common.ts';
import type { Viewer } from './common.ts';
import { keysTable } from './keys.ts';

/** The form that refused input came from: the new-key form of this account (hidden field `key_for`). */
export const KEY_FORM_FIELD = 'key_for';

/**
 * A service account's API keys on the team page (for those who manage it): the keys, Rotate and Revoke,
 * and a form for a new key (shown once, on the page that follows). `refused`: this account's new-key
 * form's problems, shown beside it with what was typed (form).
 */
export function serviceAccountKeysBlock(input: { v: Viewer; base: string; sa: ServiceAccountView; keys: KeyView[]; mayCreate: boolean; form: Record<string, string>; refused: Notices | null }): Html {
  const { v, sa, keys } = input;
  const form = input.refused ? input.form : {};
  const action = `${input.base}/service-accounts/${sa.id}/keys`;
  const nameId = `key-name-problem-${sa.id}`;
  const { problem, rest } = fieldProblem(input.refused ?? undefined, 'name', nameId);
  return html`<div class="sa-keys" id="keys-${sa.id}">
<h3>API keys of <code>${sa.username}</code></h3>
${keys.length ? keysTable({ keys, csrf: v.csrf, actionBase: (k) => `${action}/${k.id}`, mayRotate: input.mayCreate, whose: ` of ${sa.username}` }) : html`<p class="empty">No live keys: nothing can use this account until it has one.</p>`}
${
  input.mayCreate
    ? html`${input.refused ? notices(rest) : ''}
<form method="post" action="${action}" class="row">
${csrfField(v.csrf)}
<input type="hidden" name="${KEY_FORM_FIELD}" value="${sa.id}">
<label>New key's name <input name="name" required maxlength="100" value="${form.name ?? ''}" placeholder="e.g. nightly job"${problem ? html` aria-invalid="true" aria-describedby="${nameId}"` : ''}>${problem ?? ''}</label>
<label>Expires in (days) <input type="number" name="expires_in_days" min="1" max="3650" value="${form.expires_in_days ?? ''}" placeholder="never" class="short"></label>
<button type="submit">New key</button>
</form>`
    : ''
}
</div>`;
}
