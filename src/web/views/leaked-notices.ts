import type { LeakedCredentialView } from '../../secret-scanning/secret-scanning.service.ts';
import { html, when } from '../../html/html.ts';
import type { Html } from '../../html/html.ts';
import { buttonForm } from './common.ts';

const WHAT = { api_key: 'key', access_token: 'access token', scim_token: 'SCIM token' } as const;

/** What to do about a leaked credential: it is revoked already, so only its replacement is left. */
function remedy(n: LeakedCredentialView): string {
  if (n.credential_type === 'access_token') return 'the workload exchanges a new one by itself; find out how the token got out';
  if (n.credential_type === 'scim_token') return 'create a new one on the admin page and paste it into your IdP';
  return 'create a new one';
}

/** Where and when it was found: the scanner's URL (a link when it is https), its source, the date. */
function foundAt(n: LeakedCredentialView): Html {
  const url = n.url ? (n.url.startsWith('https://') ? html` at <a href="${n.url}" rel="noopener noreferrer">${n.url}</a>` : html` at <code>${n.url}</code>`) : '';
  return html`was found public${url}${n.source ? html` (${n.source})` : ''} on ${when(n.reported_at)}`;
}

/**
 * The notices of credentials a secret scanner reported public (src/secret-scanning), each with its
 * Dismiss button (a POST with the page's CSRF token, to `${dismissBase}/${id}/dismiss`). `whose`: the
 * viewer's own (settings), or the team's service accounts' (team page).
 */
export function leakedNotices(notices: readonly LeakedCredentialView[], input: { csrf: string; dismissBase: string; whose: 'mine' | 'team' }): Html {
  if (notices.length === 0) return html``;
  return html`<section class="alert" role="alert" aria-labelledby="leaked-title" data-leaked-notices>
<h2 id="leaked-title">Leaked credentials revoked</h2>
${notices.map(
  (n) => html`<p data-leaked="${n.id}">${
    input.whose === 'mine' ? html`Your ${WHAT[n.credential_type]} <code>${n.label}</code>` : html`The ${WHAT[n.credential_type]} <code>${n.label}</code> of service account <code>${n.service_account ?? 'deleted'}</code>`
  } ${foundAt(n)} and was revoked — ${remedy(n)}. ${buttonForm({ action: `${input.dismissBase}/${n.id}/dismiss`, csrf: input.csrf, label: 'Dismiss' })}</p>`,
)}
</section>`;
}
