import type { KeyView } from '../../keys/keys.service.ts';
import type { OrgView } from '../../orgs/orgs.service.ts';
import type { NewKeyFlash } from '../flash.ts';
import { html, notices, raw, when } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { Html, Notices } from '../../html/html.ts';
import { page } from './common.ts';
import { keysTable } from './keys.ts';
import { leakedNotices } from './leaked-notices.ts';
import type { LeakedCredentialView } from '../../secret-scanning/secret-scanning.service.ts';
import type { Viewer } from './common.ts';

/** The new key, once: the page that follows its creation (or rotation) shows it, nothing else ever does. */
export function newKeyPanel(k: NewKeyFlash): Html {
  return html`<section class="card secret" aria-labelledby="new-key-title">
<h2 id="new-key-title">Your new API key${k.owner === 'personal' ? '' : html` for <code>${k.owner}</code>`}</h2>
<p class="warning"><strong>Copy it now: it will not be shown again.</strong> trackgate keeps only a hash of it. Keep it secret and out of version control.</p>
<div class="keybox"><code id="new-key" class="key">${k.key}</code> <button type="button" class="secondary" data-copy="new-key">Copy</button></div>
<p>Key ID <code>${k.key_id}</code> · name ${k.name} · ${k.expires_at ? html`expires ${when(k.expires_at)}` : 'does not expire'}</p>
<p>Use it with the tracking client:</p>
<pre><code>export WANDB_API_KEY=${k.key}</code></pre>
</section>`;
}

export interface SettingsInput {
  viewer: Viewer;
  org: OrgView;
  keys: KeyView[];
  newKey?: NewKeyFlash | undefined;
  /** Credentials of the viewer a secret scanner reported public (and trackgate revoked). */
  leaked?: readonly LeakedCredentialView[];
  notices?: Notices;
  form?: Record<string, string>;
}

export function settingsPage(input: SettingsInput): string {
  const { viewer: v, org, keys } = input;
  const form = input.form ?? {};
  const maxDays = org.policies.max_key_lifetime_days;
  const body = html`<h1>Settings</h1>
${notices(input.notices ?? {})}
${leakedNotices(input.leaked ?? [], { csrf: v.csrf, dismissBase: '/settings/leaked-credentials', whose: 'mine' })}
${input.newKey ? newKeyPanel(input.newKey) : ''}
<section class="card" aria-labelledby="profile">
<h2 id="profile">Profile</h2>
<dl class="facts">
<dt>Name</dt><dd>${v.displayName}</dd>
<dt>Email</dt><dd>${v.email}</dd>
<dt>Username</dt><dd><code>${v.username}</code></dd>
<dt>Organization</dt><dd>${org.name} <span class="muted">(<code>${org.slug}</code>, ${org.plan} plan)</span></dd>
<dt>Role</dt><dd>${v.role}${v.instanceAdmin ? html` <span class="badge">instance operator</span>` : ''}</dd>
<dt>Teams</dt><dd>${v.teams.length ? html`<ul class="plain">${v.teams.map((t) => html`<li><a href="/teams/${encodeURIComponent(t.name)}">${t.name}</a> <span class="muted">${t.role}</span></li>`)}</ul>` : html`<span class="muted">none</span>`}</dd>
</dl>
</section>

<section class="card" aria-labelledby="keys">
<h2 id="keys">API keys</h2>
<p class="muted">A key lets the tracking client (and scripts) act as you: set it as <code>WANDB_API_KEY</code>. To replace a key, rotate it: the new key is shown once, and the old one keeps working for the grace period (0 seconds ends it at once).</p>
${
  keys.length
    ? keysTable({ keys, csrf: v.csrf, actionBase: (k) => `/settings/keys/${k.id}`, mayRotate: !org.policies.disable_personal_keys, whose: '' })
    : html`<p class="empty">You have no API keys yet.</p>`
}
${
  org.policies.disable_personal_keys
    ? html`<p class="notice">Your organization's policy disables creating personal API keys.</p>`
    : html`<form method="post" action="/settings/keys" class="row">
${csrfField(v.csrf)}
<label>Name <input name="name" required maxlength="100" value="${form.name ?? ''}" placeholder="laptop"></label>
<label>Expires in (days) <input type="number" name="expires_in_days" min="1" max="${maxDays ?? 3650}" value="${form.expires_in_days ?? ''}" placeholder="${maxDays ? String(maxDays) : 'never'}" class="short"></label>
<button type="submit">Create key</button>
</form>
${maxDays ? html`<p class="muted">Your organization allows keys to live at most ${maxDays} days.</p>` : ''}`
}
</section>

<section class="card" aria-labelledby="appearance">
<h2 id="appearance">Appearance</h2>
<form method="post" action="/settings/theme" class="row" data-theme-form>
${csrfField(v.csrf)}
<fieldset class="choices"><legend>Theme</legend>
${(['light', 'dark', 'system'] as const).map(
  (t) => html`<label><input type="radio" name="theme" value="${t}"${v.theme === t ? raw(' checked') : ''}> ${t === 'light' ? 'Light' : t === 'dark' ? 'Dark (night mode)' : 'System (follows your device)'}</label>`,
)}
</fieldset>
<button type="submit" data-without-script>Save</button>
<span class="muted" role="status" data-theme-status></span>
</form>
</section>

<section class="card" aria-labelledby="session">
<h2 id="session">Session</h2>
<form method="post" action="/logout">${csrfField(v.csrf)}<button type="submit" class="secondary">Sign out</button></form>
</section>`;
  return page(v, 'Settings', 'settings', body);
}
