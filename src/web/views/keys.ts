import type { KeyView } from '../../keys/keys.service.ts';
import { cell, html, when } from '../../html/html.ts';
import type { Html } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import { buttonForm } from './common.ts';

/**
 * A table of API keys (yours on /settings, a service account's on its team page): key ID, name, created,
 * last used, expiry, and Rotate (with a grace period) and Revoke. A key that was rotated and still works
 * is marked as the old key in its grace period, with the time it stops.
 */
export function keysTable(input: {
  keys: readonly KeyView[];
  csrf: string;
  /** Where a key's forms post: `${base}/rotate`, `${base}/revoke`. */
  actionBase: (k: KeyView) => string;
  /** The policy lets this owner have new keys (the service decides anyway). */
  mayRotate: boolean;
  /** For the buttons' labels and questions: "" (yours) or " of <account>". */
  whose: string;
}): Html {
  const { keys, csrf } = input;
  const now = new Date().toISOString();
  const successorOf = new Map(keys.filter((k) => k.rotated_from !== null).map((k) => [k.rotated_from ?? '', k]));
  const live = (k: KeyView) => k.expires_at === null || k.expires_at > now;
  const rows = keys.map((k) => {
    const successor = successorOf.get(k.id);
    const state: Html | string = successor
      ? live(k)
        ? html` <span class="badge warn" data-grace>old key, grace period until ${when(k.expires_at)}</span>`
        : html` <span class="badge off">replaced</span>`
      : !live(k)
        ? html` <span class="badge off">expired</span>`
        : k.rotated_from
          ? html` <span class="badge">rotated</span>`
          : '';
    // Offer Rotate only where the service would allow it: not under the policy, not for an expired key, not twice.
    const rotatable = input.mayRotate && !successor && live(k);
    return html`<tr${successor && live(k) ? html` class="grace"` : ''}>
<td><code>${k.key_id}</code></td>
<td>${k.name}${state}</td>
<td>${cell(k.created_at)}</td>
<td>${cell(k.last_used_at, 'never')}</td>
<td>${cell(k.expires_at, 'never')}</td>
<td class="actions">
${
  rotatable
    ? html`<form method="post" action="${input.actionBase(k)}/rotate" class="inline rotate">${csrfField(csrf)}<label title="How long the old key keeps working after rotation (0 ends it at once)"><input type="number" name="grace_seconds" min="0" max="2592000" value="3600" class="short" aria-label="Grace seconds for key ${k.key_id}"> s grace</label> <button type="submit" class="secondary">Rotate</button></form>`
    : ''
}
${buttonForm({ action: `${input.actionBase(k)}/revoke`, csrf, label: 'Revoke', danger: true, confirm: `Revoke the key ${k.key_id} (${k.name})${input.whose}? Anything using it stops working at once.` })}
</td>
</tr>`;
  });
  return html`<div class="scroll"><table>
<thead><tr><th scope="col">Key ID</th><th scope="col">Name</th><th scope="col">Created (UTC)</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}
