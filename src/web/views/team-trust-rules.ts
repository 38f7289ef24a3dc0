import type { FederatedCredentialView } from '../../federation/federated-credentials.service.ts';
import { GITHUB_ACTIONS_ISSUER, sharedIssuerName } from '../../federation/trust-rules.ts';
import { cell, html, notices, options } from '../../html/html.ts';
import type { Html, Notices } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import { buttonForm } from './common.ts';
import type { Viewer } from './common.ts';

/** The issuer presets of the add-a-rule form (the page's own field; see src/web/pages/team-trust-rules.ts). */
export const ISSUER_PRESETS = ['github', 'kubernetes', 'other'] as const;
const PRESET_LABELS = { github: 'GitHub Actions', kubernetes: 'Kubernetes (your cluster)', other: 'Other OIDC issuer' } as const;

/** The form that refused input came from: the trust-rule form of this account (hidden field `rule_for`). */
export const RULE_FORM_FIELD = 'rule_for';

/** The "keyless" mark of a service account's row. */
export function keylessBadge(sa: ServiceAccountView): Html | string {
  return sa.keyless ? html` <span class="badge" title="no API keys: it authenticates by workload federation only">keyless</span>` : '';
}

/** The create-service-account form's checkbox. */
export function keylessCheckbox(form: Record<string, string>): Html {
  return html`<label class="check"><input type="checkbox" name="keyless"${form.keyless === 'on' ? html` checked` : ''}> keyless (federation only)</label>`;
}

function conditionsText(conditions: Record<string, string>): string {
  return Object.entries(conditions)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

/**
 * A service account's trust rules on the team page: which workload tokens may act as it, a delete button
 * each, and the form to add one. `refused`: the problems of this account's form, shown beside it with what
 * was typed (form), after a refused post.
 */
export function trustRulesBlock(input: { v: Viewer; base: string; sa: ServiceAccountView; rules: FederatedCredentialView[]; form: Record<string, string>; refused: Notices | null }): Html {
  const { v, base, sa, rules } = input;
  const form = input.refused ? input.form : {};
  const action = `${base}/service-accounts/${sa.id}/federated-credentials`;
  const id = `trust-${sa.id}`;
  const rows = rules.map(
    (r) => html`<tr>
<td>${r.name}</td>
<td><code>${r.issuer}</code>${sharedIssuerName(r.issuer) ? html` <span class="muted">(${sharedIssuerName(r.issuer)})</span>` : ''}</td>
<td><code>${r.subject}</code></td>
<td><code>${r.audience}</code></td>
<td>${Object.keys(r.conditions).length ? html`<pre>${conditionsText(r.conditions)}</pre>` : html`<span class="muted">none</span>`}</td>
<td>${cell(r.created_at)}</td>
<td class="actions">${buttonForm({ action: `${action}/${r.id}/delete`, csrf: v.csrf, label: 'Delete', danger: true, confirm: `Delete the trust rule "${r.name}"? The access tokens it issued stop working at once.` })}</td>
</tr>`,
  );
  return html`<div class="trust-rules" id="${id}">
<h3>Trust rules of <code>${sa.username}</code>${keylessBadge(sa)}</h3>
${
  rules.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Name</th><th scope="col">Issuer</th><th scope="col">Subject</th><th scope="col">Audience</th><th scope="col">Conditions</th><th scope="col">Created (UTC)</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table></div>`
    : html`<p class="empty">No trust rules: no workload can act as this account without a key.</p>`
}
${input.refused ? notices(input.refused) : ''}
<form method="post" action="${action}" class="stack">
${csrfField(v.csrf)}
<input type="hidden" name="${RULE_FORM_FIELD}" value="${sa.id}">
<label>Name <input name="name" required maxlength="100" value="${form.name ?? ''}" placeholder="e.g. train repo, main branch"></label>
<label>Issuer <select name="issuer_preset">${options(ISSUER_PRESETS, form.issuer_preset ?? 'github', PRESET_LABELS)}</select></label>
<label>Issuer URL (Kubernetes or other; GitHub Actions: ${GITHUB_ACTIONS_ISSUER}) <input name="issuer" maxlength="512" value="${form.issuer ?? ''}" placeholder="https://oidc.example.com/id/CLUSTER"></label>
<label>Subject (exact, or a prefix ending in *) <input name="subject" required maxlength="512" value="${form.subject ?? ''}" placeholder="repo:acme/train:ref:refs/heads/main or system:serviceaccount:ml:trainer"></label>
<label>Audience <input name="audience" maxlength="256" value="${form.audience ?? ''}" placeholder="${v.orgSlug}"></label>
<label>Conditions, one <code>claim=value</code> per line <textarea name="conditions" rows="2" placeholder="repository_owner=acme">${form.conditions ?? ''}</textarea></label>
<button type="submit">Add trust rule</button>
</form>
<p class="muted">A workload whose token (from this issuer, for this audience, with this subject and every condition) is exchanged at <code>/oidc/token</code> acts as <code>${sa.username}</code>, with no key to store. The audience defaults to your organization's slug.</p>
</div>`;
}
