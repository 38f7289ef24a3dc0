import { ROLES } from '../../auth/principal.ts';
import type { AuditEventView } from '../../audit/audit.service.ts';
import type { OrgView } from '../../orgs/orgs.service.ts';
import { MAX_SCIM_TOKENS } from '../../scim/scim-tokens.service.ts';
import type { ScimTokenView } from '../../scim/scim-tokens.service.ts';
import type { IdentityView } from '../../sso/identities.service.ts';
import type { ConnectionView } from '../../sso/sso.service.ts';
import type { UserView } from '../../users/users.service.ts';
import type { NewScimTokenFlash, SsoTestFlash } from '../flash.ts';
import { cell, html, notices, options, raw, when } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { Html, Notices } from '../../html/html.ts';
import { buttonForm, page } from './common.ts';
import { editForm, guidedSetup, samlEditForm, samlFacts, samlSetup, warningsList } from './sso-setup.ts';
import type { Provider } from '../../sso/setup-advice.ts';
import type { Viewer } from './common.ts';

export interface AdminInput {
  viewer: Viewer;
  org: OrgView;
  callbackUri: string;
  connections: ConnectionView[];
  users: UserView[];
  /** Linked IdP identities by user id. */
  identities: Map<string, IdentityView[]>;
  /** Provisioning: the SCIM base URL, the organization's live SCIM tokens, and a token just created (shown this once). */
  scim: { baseUrl: string; tokens: ScimTokenView[]; newToken?: NewScimTokenFlash | undefined };
  audit: { events: AuditEventView[]; next_cursor: number | null; before: number | undefined };
  ssoTest?: SsoTestFlash | undefined;
  /** The guided setup's chosen IdP (?provider=, or the refused form's). */
  provider?: Provider | undefined;
  /** The SAML setup form is open (/admin?saml=1). */
  samlSetup?: boolean | undefined;
  /** The connection whose edit form was refused (its notices and typed values show in it). */
  editing?: string | undefined;
  notices?: Notices;
  /** Which form the notices belong to, so they show next to it. */
  noticesFor?: 'sso' | 'sso-create' | 'saml-create' | 'sso-edit' | 'policies' | 'users' | 'scim' | undefined;
  form?: Record<string, string>;
}

function testResult(t: SsoTestFlash): Html {
  return t.ok
    ? html`<div class="notice" role="status"><p><strong>Test passed</strong> for ${t.issuer}: discovery found issuer <code>${t.discovered_issuer ?? ''}</code>${t.signing_algorithms.length ? html`, signing algorithms ${t.signing_algorithms.join(', ')}` : ''}.</p></div>`
    : html`<div class="alert" role="alert"><p><strong>Test found problems</strong> with ${t.issuer}:</p><ul class="problems">${t.problems.map((p) => html`<li><strong>${p.field}</strong>: ${p.message} <code>${p.code}</code></li>`)}</ul></div>`;
}

function connectionCard(c: ConnectionView, csrf: string, test: SsoTestFlash | undefined, failedEdit: { notices: Notices; form: Record<string, string> } | undefined): Html {
  const base = `/admin/sso/${c.id}`;
  return html`<article class="conn" id="conn-${c.id}">
<h3>${c.issuer} ${c.enabled ? html`<span class="badge ok">enabled</span>` : html`<span class="badge off">disabled</span>`}</h3>
${test && test.id === c.id ? testResult(test) : ''}
${c.saml ? warningsList(c.warnings, 'Check these:') : warningsList(c.warnings)}
${c.saml ? samlFacts(c) : html`<dl class="facts">
<dt>Client ID</dt><dd><code>${c.client_id}</code></dd>
<dt>Flow</dt><dd>${c.flow === 'implicit' ? 'implicit' : 'authorization code + PKCE'}, response mode ${c.response_mode}${c.has_client_secret ? ', client secret stored' : ''}</dd>
<dt>Callback URI</dt><dd><code>${c.callback_uri}</code> <span class="muted">(register it in the IdP)</span></dd>
<dt>Email domains</dt><dd>${c.domains.length ? c.domains.join(', ') : html`<span class="muted">none (people sign in with /login?org=…)</span>`}</dd>
<dt>JIT</dt><dd>${c.jit ? 'on: new people get an account as members' : 'off: only people an admin added can sign in'}</dd>
<dt>Group rules</dt><dd>${c.group_roles.length ? html`<ul class="plain">${c.group_roles.map((r) => html`<li>${r.group} → <code>${r.team}</code> ${r.role}</li>`)}</ul>` : html`<span class="muted">none</span>`}</dd>
${c.allowed_tenant_ids.length ? html`<dt>Tenants</dt><dd>${c.allowed_tenant_ids.join(', ')}</dd>` : ''}
<dt>Discovered</dt><dd>${when(c.discovered_at, 'never')}</dd>
</dl>`}
<div class="buttons">
${buttonForm({ action: `${base}/test`, csrf, label: 'Test' })}
<form method="post" action="${base}/test-login" class="inline" target="_blank">${csrfField(csrf)}<button type="submit" class="secondary">Test login</button></form>
${buttonForm({ action: `${base}/enabled`, csrf, label: c.enabled ? 'Disable' : 'Enable', fields: { enabled: c.enabled ? 'false' : 'true' }, ...(c.enabled ? { confirm: 'Disable this connection? People cannot sign in through it until it is enabled again.' } : {}) })}
${buttonForm({ action: `${base}/delete`, csrf, label: 'Delete', danger: true, confirm: `Delete the SSO connection ${c.issuer}?` })}
</div>
${c.saml ? samlEditForm(c, csrf, failedEdit) : editForm(c, csrf, failedEdit)}
</article>`;
}

function identityCells(username: string, identities: IdentityView[], csrf: string): Html {
  if (identities.length === 0) return html`<span class="muted">none yet</span>`;
  return html`${identities.map(
    (i) => html`<div><span title="${i.issuer}">${hostOf(i.issuer)}</span> <code>${i.subject}</code> ${buttonForm({ action: `/admin/users/${username}/identities/${i.id}/unlink`, csrf, label: 'Unlink', danger: true, confirm: `Unlink ${username} from ${i.issuer}? Their sessions end, and their next SSO sign-in links the identity it comes with.` })}</div>`,
  )}`;
}

function hostOf(issuer: string): string {
  try {
    return new URL(issuer).host;
  } catch {
    return issuer;
  }
}

/** The new SCIM token, once: the view that follows its creation shows it, nothing else ever does. */
function newScimTokenPanel(t: NewScimTokenFlash, baseUrl: string): Html {
  return html`<div class="card secret" role="status">
<h3>Your new SCIM token <code>${t.token_id}</code> (${t.name})</h3>
<p class="warning"><strong>Copy it now: it will not be shown again.</strong> trackgate keeps only a hash of it. Paste it into your IdP's provisioning settings (Okta: HTTP Header, Authorization; Entra ID: Secret Token) with the base URL <code>${baseUrl}</code>.</p>
<div class="keybox"><code id="new-scim-token" class="key">${t.token}</code> <button type="button" class="secondary" data-copy="new-scim-token">Copy</button></div>
</div>`;
}

function scimSection(input: AdminInput, here: Html | string, form: Record<string, string>): Html {
  const { viewer: v, scim } = input;
  const rows = scim.tokens.map(
    (t) => html`<tr>
<td><code>${t.token_id}</code></td>
<td>${t.name}</td>
<td>${cell(t.created_at)}</td>
<td>${cell(t.last_used_at, 'never')}</td>
<td class="actions">${buttonForm({ action: `/admin/scim/tokens/${t.id}/revoke`, csrf: v.csrf, label: 'Revoke', danger: true, confirm: `Revoke the SCIM token ${t.token_id} (${t.name})? The IdP's provisioning with it stops at once.` })}</td>
</tr>`,
  );
  return html`<section class="card" id="scim" aria-labelledby="scim-title">
<h2 id="scim-title">Provisioning (SCIM)</h2>
${here}
${scim.newToken ? newScimTokenPanel(scim.newToken, scim.baseUrl) : ''}
<p class="muted">Your IdP (Okta, Entra ID) creates, updates and deactivates people and teams of ${input.org.slug} through SCIM 2.0. Deactivating someone there revokes their API keys and ends their sessions here within a second. Give the IdP this base URL and a SCIM token.</p>
<dl class="facts">
<dt>SCIM base URL</dt><dd><code id="scim-base-url">${scim.baseUrl}</code> <button type="button" class="secondary" data-copy="scim-base-url">Copy</button></dd>
</dl>
${
  scim.tokens.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Token ID</th><th scope="col">Name</th><th scope="col">Created (UTC)</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table></div>`
    : html`<p class="empty">No SCIM token yet: no IdP can provision ${input.org.slug}.</p>`
}
<form method="post" action="/admin/scim/tokens" class="row">
${csrfField(v.csrf)}
<label>Token name <input name="name" required value="${form.name ?? ''}" placeholder="okta"></label>
<button type="submit">Create SCIM token</button>
</form>
<p class="muted">The token is shown once. An organization holds at most ${MAX_SCIM_TOKENS} tokens: one per IdP and a spare to rotate (create the new one, paste it into the IdP, then revoke the old one). A revoked token is refused on its next request, on every instance.</p>
</section>`;
}

export function adminPage(input: AdminInput): string {
  const { viewer: v, org } = input;
  const f = input.form ?? {};
  const here = (s: AdminInput['noticesFor']) => (input.noticesFor === s ? notices(input.notices ?? {}) : '');
  const userRows = input.users.map(
    (u) => html`<tr${u.status === 'deactivated' ? raw(' class="inactive"') : ''}>
<td><code>${u.username}</code>${u.username === v.username ? html` <span class="badge">you</span>` : ''}</td>
<td>${u.display_name}</td>
<td>${u.email}</td>
<td><form method="post" action="/admin/users/${u.username}/role" class="inline">${csrfField(v.csrf)}<select name="role" aria-label="Role of ${u.username}">${options(ROLES, u.role)}</select> <button type="submit" class="secondary">Change</button></form></td>
<td>${u.status}</td>
<td>${identityCells(u.username, input.identities.get(u.id) ?? [], v.csrf)}</td>
<td class="actions">${
      u.status === 'active'
        ? buttonForm({ action: `/admin/users/${u.username}/status`, csrf: v.csrf, label: 'Deactivate', danger: true, fields: { status: 'deactivated' }, confirm: `Deactivate ${u.username}? Their keys and sessions stop working.` })
        : buttonForm({ action: `/admin/users/${u.username}/status`, csrf: v.csrf, label: 'Reactivate', fields: { status: 'active' } })
    }</td>
</tr>`,
  );
  const auditRows = input.audit.events.map(
    (e) => html`<tr>
<td>${cell(e.created_at)}</td>
<td>${e.actor.name ?? e.actor.type}${e.actor.type !== 'user' ? html` <span class="muted">${e.actor.type}</span>` : ''}</td>
<td><code>${e.action}</code></td>
<td>${e.target.name ?? e.target.id ?? ''} <span class="muted">${e.target.type}</span></td>
<td>${e.ip ?? ''}</td>
<td class="details">${e.details ? html`<code>${JSON.stringify(e.details)}</code>` : ''}</td>
</tr>`,
  );
  const policies = org.policies;
  const body = html`<h1>Organization admin</h1>
<p class="muted">${org.name} (<code>${org.slug}</code>) · ${org.plan} plan</p>
<nav class="toc" aria-label="Sections"><a href="#sso">SSO connections</a> <a href="#policies">Policies</a> <a href="#users">Users</a> <a href="#scim">Provisioning (SCIM)</a> <a href="#audit">Audit log</a></nav>
${input.noticesFor === undefined ? notices(input.notices ?? {}) : ''}

<section class="card" id="sso" aria-labelledby="sso-title">
<h2 id="sso-title">SSO connections</h2>
${here('sso')}
${input.connections.length
  ? input.connections.map((c) => connectionCard(c, v.csrf, input.ssoTest, input.noticesFor === 'sso-edit' && input.editing === c.id ? { notices: input.notices ?? {}, form: f } : undefined))
  : html`<p class="empty">No SSO connection yet: people of ${org.slug} cannot sign in through an IdP.</p>`}
${guidedSetup({ csrf: v.csrf, callbackUri: input.callbackUri, provider: input.provider, form: input.noticesFor === 'sso-create' ? f : {}, notices: input.noticesFor === 'sso-create' ? (input.notices ?? {}) : undefined })}
${samlSetup({ csrf: v.csrf, form: input.noticesFor === 'saml-create' ? f : {}, notices: input.noticesFor === 'saml-create' ? (input.notices ?? {}) : undefined, open: input.samlSetup === true })}
</section>

<section class="card" id="policies" aria-labelledby="policies-title">
<h2 id="policies-title">Policies</h2>
${here('policies')}
<form method="post" action="/admin/policies" class="stack">
${csrfField(v.csrf)}
<label class="check"><input type="checkbox" name="require_sso"${policies.require_sso ? raw(' checked') : ''}> Require SSO: people sign in through the IdP only (needs an enabled connection; login links then work for the instance operator only)</label>
<label class="check"><input type="checkbox" name="disable_personal_keys"${policies.disable_personal_keys ? raw(' checked') : ''}> Disable creating personal API keys</label>
<label>Maximum key lifetime (days) <input type="number" name="max_key_lifetime_days" min="1" max="3650" value="${policies.max_key_lifetime_days ?? ''}" placeholder="no limit" class="short"></label>
<button type="submit">Save policies</button>
</form>
</section>

<section class="card" id="users" aria-labelledby="users-title">
<h2 id="users-title">Users</h2>
${here('users')}
<div class="scroll"><table>
<thead><tr><th scope="col">Username</th><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th><th scope="col">SSO identity</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${userRows}</tbody></table></div>
<h3>Add a person before they sign in</h3>
<form method="post" action="/admin/users" class="row">
${csrfField(v.csrf)}
<label>Email <input name="email" type="email" required value="${input.noticesFor === 'users' ? (f.email ?? '') : ''}"></label>
<label>Username <input name="username" required value="${input.noticesFor === 'users' ? (f.username ?? '') : ''}"></label>
<label>Name <input name="display_name" value="${input.noticesFor === 'users' ? (f.display_name ?? '') : ''}"></label>
<label>Role <select name="role">${options(ROLES, 'member')}</select></label>
<button type="submit">Add user</button>
</form>
<p class="muted">Their first SSO sign-in links their IdP account to this user when the IdP vouches for the email (<code>email_verified</code>; Azure AD: <code>xms_edov</code>) and its domain is one of the connection's domains. An account linked to one IdP identity is never moved to another by email: unlink it here first.</p>
</section>

${scimSection(input, here('scim'), input.noticesFor === 'scim' ? f : {})}

<section class="card" id="audit" aria-labelledby="audit-title">
<h2 id="audit-title">Audit log</h2>
${
  input.audit.events.length
    ? html`<div class="scroll"><table class="audit">
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">IP</th><th scope="col">Details</th></tr></thead>
<tbody>${auditRows}</tbody></table></div>`
    : html`<p class="empty">No events${input.audit.before !== undefined ? ' on this page' : ''}.</p>`
}
<p class="pager">${input.audit.before !== undefined ? html`<a href="/admin#audit">Newest</a>` : ''} ${input.audit.next_cursor !== null ? html`<a href="/admin?before=${String(input.audit.next_cursor)}#audit" rel="next">Older events</a>` : ''}</p>
</section>`;
  return page(v, 'Admin', 'admin', body);
}
