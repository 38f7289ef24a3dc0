import type { ConnectionView } from '../../sso/sso.service.ts';
import type { TestLoginReport } from '../../sso/sso-login.service.ts';
import { GOOGLE_ISSUER, PROVIDERS } from '../../sso/setup-advice.ts';
import type { Provider } from '../../sso/setup-advice.ts';
import { html, notices, options, raw } from '../../html/html.ts';
import type { Html, Notices } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';

// The SSO section's forms on /admin: the guided setup (per IdP), the edit form of a connection, and the warnings
// that say why group rules may do nothing. admin.ts places them.

type Problems = NonNullable<Notices['problems']>;

const PROVIDER_LABEL: Record<Provider, string> = { okta: 'Okta', azure: 'Azure AD (Entra ID)', google: 'Google Workspace', oidc: 'Another OIDC provider' };

/** The problems of one field, beside it (the form's list above says them all too). */
function fieldError(problems: Problems, ...names: string[]): Html | string {
  const mine = problems.filter((p) => names.some((n) => p.field === n || p.field.startsWith(`${n}.`)));
  return mine.length ? html`<span class="field-error" role="alert">${mine.map((p) => html`${p.message} `)}</span>` : '';
}

const invalid = (problems: Problems, name: string) => (problems.some((p) => p.field === name || p.field.startsWith(`${name}.`)) ? raw(' aria-invalid="true"') : '');

export function warningsList(warnings: ConnectionView['warnings'], title = 'The group rules may do nothing:'): Html | string {
  if (!warnings.length) return '';
  return html`<div class="warning-box" role="status"><p><strong>${title}</strong></p><ul class="problems">${warnings.map((w) => html`<li><strong>${w.field}</strong>: ${w.message} <code>${w.code}</code></li>`)}</ul></div>`;
}

function rulesText(c: ConnectionView): string {
  return c.group_roles.map((r) => `${r.group},${r.team},${r.role}`).join('\n');
}

/** The edit form of a saved connection; `form` is what was typed when a save was refused. */
export function editForm(c: ConnectionView, csrf: string, failed: { notices: Notices; form: Record<string, string> } | undefined): Html {
  const f = failed?.form;
  const problems = failed?.notices.problems ?? [];
  const val = (name: string, saved: string) => (f ? (f[name] ?? '') : saved);
  const jit = f ? f.jit === 'on' : c.jit;
  return html`<details class="edit"${failed ? raw(' open') : ''}>
<summary>Edit</summary>
${failed ? notices(failed.notices) : ''}
<form method="post" action="/admin/sso/${c.id}/edit" class="stack" novalidate>
${csrfField(csrf)}
<label>Issuer URL <input name="issuer" type="url" required value="${val('issuer', c.issuer)}"${invalid(problems, 'issuer')}> ${fieldError(problems, 'issuer')}</label>
<label>Client ID <input name="client_id" required value="${val('client_id', c.client_id)}"${invalid(problems, 'client_id')}> ${fieldError(problems, 'client_id')}</label>
<div class="row">
<label>Flow <select name="flow">${options(['implicit', 'code'] as const, (f?.flow ?? c.flow) as 'implicit' | 'code', { implicit: 'implicit (single-page app)', code: 'authorization code + PKCE' })}</select> ${fieldError(problems, 'flow')}</label>
<label>Response mode <select name="response_mode">${options(['form_post', 'fragment'] as const, (f?.response_mode ?? c.response_mode) as 'form_post' | 'fragment')}</select> ${fieldError(problems, 'response_mode')}</label>
</div>
<label>Client secret <span class="muted">(${c.has_client_secret ? 'a secret is stored: leave blank to keep it' : 'none stored'}; write-only)</span> <input name="client_secret" type="password" autocomplete="off" value=""${invalid(problems, 'client_secret')}> ${fieldError(problems, 'client_secret')}</label>
${c.has_client_secret ? html`<label class="check"><input type="checkbox" name="remove_client_secret"${f?.remove_client_secret === 'on' ? raw(' checked') : ''}> Remove the stored client secret</label>` : ''}
<label>Scopes <input name="scopes" value="${val('scopes', c.scopes.join(' '))}"${invalid(problems, 'scopes')}> ${fieldError(problems, 'scopes')}</label>
${claimFields('Claims', problems, (name) => val(`claims_${name}`, c.claims[name]))}
<label>Email domains <input name="domains" value="${val('domains', c.domains.join(', '))}"${invalid(problems, 'domains')}> ${fieldError(problems, 'domains')}</label>
<label>Group rules <span class="muted">(one per line: <code>group,team,role</code>)</span>
<textarea name="group_roles" rows="3"${invalid(problems, 'group_roles')}>${val('group_roles', rulesText(c))}</textarea> ${fieldError(problems, 'group_roles')}</label>
<label>Allowed Azure AD tenant IDs <span class="muted">(multi-tenant issuers only)</span> <input name="allowed_tenant_ids" value="${val('allowed_tenant_ids', c.allowed_tenant_ids.join(', '))}"${invalid(problems, 'allowed_tenant_ids')}> ${fieldError(problems, 'allowed_tenant_ids')}</label>
<label class="check"><input type="checkbox" name="jit"${jit ? raw(' checked') : ''}> Create accounts on first sign-in (JIT)</label>
<p class="muted">Saving runs the discovery check again and lists every problem; nothing is saved until it passes.</p>
<button type="submit">Save changes</button>
</form>
</details>`;
}

/** The console steps of each IdP (the README's "Configure SSO"), with the callback URI to register. */
function steps(provider: Provider, callback: Html): Html {
  switch (provider) {
    case 'okta':
      return html`<ol class="steps">
<li>Admin Console → <strong>Applications</strong> → <strong>Applications</strong> → <strong>Create App Integration</strong>: <strong>OIDC - OpenID Connect</strong>, <strong>Single-Page Application</strong> → Next.</li>
<li>Grant type: check <strong>Implicit (hybrid)</strong> (under <em>Advanced</em>). <strong>Sign-in redirect URIs</strong>: ${callback}. <strong>Assignments</strong>: who may use it → Save.</li>
<li>Copy the <strong>Client ID</strong> from the <strong>General</strong> tab.</li>
<li>The issuer: <strong>Security</strong> → <strong>API</strong> → <strong>Authorization Servers</strong> → the <strong>Issuer URI</strong> of <code>default</code> (<code>https://&lt;your-okta-domain&gt;/oauth2/default</code>).</li>
<li>Groups: in that authorization server → <strong>Claims</strong> → <strong>Add Claim</strong>: name <code>groups</code>, token type <strong>ID Token</strong> / <strong>Always</strong>, value type <strong>Groups</strong>, filter <strong>Matches regex</strong> <code>.*</code>. Keep the scope <code>groups</code> below. Group rules name groups as they appear in Okta.</li>
<li>Code flow instead: a <strong>Web Application</strong> with grant type <strong>Authorization Code</strong>; choose the code flow below and paste its <strong>Client secret</strong>.</li>
</ol>`;
    case 'azure':
      return html`<ol class="steps">
<li>Microsoft Entra admin center → <strong>Identity</strong> → <strong>Applications</strong> → <strong>App registrations</strong> → <strong>New registration</strong>. Supported account types: <strong>Single tenant</strong>, or <strong>Multitenant</strong>. Redirect URI: platform <strong>Web</strong>, ${callback} → Register.</li>
<li><strong>Authentication</strong> → <strong>Implicit grant and hybrid flows</strong>: check <strong>ID tokens</strong> → Save.</li>
<li>From <strong>Overview</strong> copy the <strong>Application (client) ID</strong> and the <strong>Directory (tenant) ID</strong> into the fields below.</li>
<li><strong>Token configuration</strong> → <strong>Add optional claim</strong> → ID → <code>email</code> (and <code>xms_edov</code> to link existing accounts by email); <strong>Add groups claim</strong> → Security groups, ID token <strong>Group ID</strong>. Group rules then name groups by their <strong>Object ID</strong>.</li>
<li>Code flow instead: <strong>Certificates &amp; secrets</strong> → <strong>New client secret</strong>; choose the code flow below and paste its <strong>Value</strong>.</li>
</ol>`;
    case 'google':
      return html`<ol class="steps">
<li>Google Cloud console → <strong>APIs &amp; Services</strong> → <strong>OAuth consent screen</strong>: user type <strong>Internal</strong> (only your Workspace's people).</li>
<li><strong>Credentials</strong> → <strong>Create credentials</strong> → <strong>OAuth client ID</strong>, application type <strong>Web application</strong>. <strong>Authorized redirect URIs</strong>: ${callback} → Create.</li>
<li>Copy the <strong>Client ID</strong> and the <strong>Client secret</strong> into the fields below.</li>
<li><strong>Google does not offer the implicit flow for new clients</strong>: this connection uses the authorization code flow with PKCE and the client secret. The issuer is <code>${GOOGLE_ISSUER}</code>.</li>
<li>Google's ID tokens carry no groups: group rules cannot match; manage teams on the team pages (or through SCIM).</li>
</ol>`;
    case 'oidc':
      return html`<ol class="steps">
<li>In your IdP, create a single-page application with the implicit grant for ID tokens (or a web application with the authorization code grant and a client secret).</li>
<li>Register the callback (sign-in redirect) URI ${callback}.</li>
<li>Enter its issuer URL (the one whose <code>/.well-known/openid-configuration</code> the IdP publishes) and client ID below. To use group rules, make the IdP put the groups in the ID token (often the scope <code>groups</code>).</li>
</ol>`;
  }
}

/** The guided setup: pick the IdP, follow its steps, fill only the fields it needs; saving lists every discovery problem. */
export function guidedSetup(input: { csrf: string; callbackUri: string; provider: Provider | undefined; form: Record<string, string>; notices: Notices | undefined }): Html {
  const f = input.form;
  const problems = input.notices?.problems ?? [];
  // A refused form that named no IdP (a script's post) is shown as the generic one.
  const p = input.provider ?? (Object.keys(f).length ? 'oidc' : undefined);
  const callback = html`<code id="sso-callback-uri">${input.callbackUri}</code> <button type="button" class="secondary" data-copy="sso-callback-uri">Copy</button>`;
  const chooser = html`<nav class="providers" aria-label="Identity provider">${PROVIDERS.map((x) => html`<a href="/admin?provider=${x}#sso-setup"${x === p ? raw(' aria-current="true" class="current"') : ''}>${PROVIDER_LABEL[x]}</a>`)}</nav>`;
  const open = p !== undefined || Object.keys(f).length > 0;
  const scopesDefault = p === 'okta' || p === 'oidc' ? 'openid email profile groups' : 'openid email profile';
  const flow = (f.flow ?? 'implicit') as 'implicit' | 'code';
  const fields = (() => {
    if (p === undefined) return html`<p class="muted">Choose your identity provider above to see its steps and the fields it needs.</p>`;
    const common = html`<label>Email domains <span class="muted">(comma or space separated: people with these addresses sign in here)</span> <input name="domains" value="${f.domains ?? ''}" placeholder="acme.com"${invalid(problems, 'domains')}> ${fieldError(problems, 'domains')}</label>
${
  p === 'google'
    ? ''
    : html`<label>Group rules <span class="muted">(one per line: <code>group,team,role</code>; on every sign-in, membership of these teams follows the IdP's groups)</span>
<textarea name="group_roles" rows="3" placeholder="${p === 'azure' ? '00000000-0000-0000-0000-000000000000,ml,member' : 'ML Engineers,ml,member'}"${invalid(problems, 'group_roles')}>${f.group_roles ?? ''}</textarea> ${fieldError(problems, 'group_roles')}</label>`
}
<div class="row">
<label class="check"><input type="checkbox" name="jit"${(f.provider === undefined ? true : f.jit === 'on') ? raw(' checked') : ''}> Create accounts on first sign-in (JIT)</label>
<label class="check"><input type="checkbox" name="enabled"${(f.provider === undefined ? true : f.enabled === 'on') ? raw(' checked') : ''}> Enabled</label>
</div>`;
    const clientId = html`<label>Client ID <input name="client_id" required value="${f.client_id ?? ''}"${invalid(problems, 'client_id')}> ${fieldError(problems, 'client_id')}</label>`;
    const secret = (note: string) => html`<label>Client secret <span class="muted">(${note}; stored encrypted, never shown again)</span> <input name="client_secret" type="password" autocomplete="off" value=""${invalid(problems, 'client_secret')}> ${fieldError(problems, 'client_secret')}</label>`;
    const flowFields = html`<div class="row">
<label>Flow <select name="flow">${options(['implicit', 'code'] as const, flow, { implicit: 'implicit (single-page app)', code: 'authorization code + PKCE' })}</select> ${fieldError(problems, 'flow')}</label>
<label>Response mode <select name="response_mode">${options(['form_post', 'fragment'] as const, (f.response_mode ?? 'form_post') as 'form_post' | 'fragment')}</select> ${fieldError(problems, 'response_mode')}</label>
</div>
${secret('code flow with a web application only')}`;
    const scopes = html`<label>Scopes <input name="scopes" value="${f.scopes ?? scopesDefault}"${invalid(problems, 'scopes')}> ${fieldError(problems, 'scopes')}</label>`;
    switch (p) {
      case 'okta':
      case 'oidc':
        return html`<label>Issuer URL <input name="issuer" type="url" required value="${f.issuer ?? ''}" placeholder="${p === 'okta' ? 'https://acme.okta.com/oauth2/default' : 'https://idp.example.com'}"${invalid(problems, 'issuer')}> ${fieldError(problems, 'issuer')}</label>
${clientId}${flowFields}${scopes}${common}`;
      case 'azure':
        return html`<label>Directory (tenant) ID <input name="tenant_id" value="${f.tenant_id ?? ''}" placeholder="00000000-0000-0000-0000-000000000000"${invalid(problems, 'issuer')}> ${fieldError(problems, 'issuer', 'tenant_id')}</label>
<label class="check"><input type="checkbox" name="multitenant"${f.multitenant === 'on' ? raw(' checked') : ''}> Multitenant application (issuer <code>https://login.microsoftonline.com/organizations/v2.0</code>)</label>
<label>Allowed tenant IDs <span class="muted">(multitenant only, required: the directories whose people may sign in; yours is added)</span> <input name="allowed_tenant_ids" value="${f.allowed_tenant_ids ?? ''}"${invalid(problems, 'allowed_tenant_ids')}> ${fieldError(problems, 'allowed_tenant_ids')}</label>
${clientId}${flowFields}${scopes}${common}`;
      case 'google':
        return html`<input type="hidden" name="flow" value="code"><input type="hidden" name="response_mode" value="form_post">
${fieldError(problems, 'issuer', 'flow', 'response_mode')}
${clientId}${secret('required: Google web clients are confidential')}${scopes}${common}`;
    }
  })();
  return html`<details class="create" id="sso-setup"${open ? raw(' open') : ''}>
<summary>Add an SSO connection</summary>
${chooser}
${p ? html`<h3>${PROVIDER_LABEL[p]}</h3>${steps(p, callback)}` : html`<p>Callback URI to register in the IdP: ${callback}</p>`}
${input.notices ? notices(input.notices) : ''}
${p ? html`<form method="post" action="/admin/sso" class="stack" novalidate>
${csrfField(input.csrf)}
<input type="hidden" name="provider" value="${p}">
${fields}
<p class="muted">Saving checks the IdP's discovery document and lists every problem, field by field; nothing is saved until they are fixed.</p>
<button type="submit">Create connection</button>
</form>` : fields}
</details>`;
}

/** The test login's first step, in its new tab: the transaction is stored, the IdP is next. */
export function testLoginStartBody(issuer: string, url: string): Html {
  return html`<h1>Test login</h1>
<p>Sign in at ${issuer} as the person to try. trackgate then shows what the ID token carried and what it would do, and changes nothing: no account, team or session, and you stay signed in as yourself.</p>
<p><a class="button" href="${url}">Continue to the identity provider</a></p>`;
}

const ROLE_OR_NONE = (r: string | null) => r ?? 'none';

/** What a test login found: the claims, the account it maps to, the team roles the group rules would give, what is missing. */
export function testReportBody(r: TestLoginReport): Html {
  const a = r.account;
  const outcome = { existing: 'Existing account', linked_by_email: 'Existing account, linked by email', jit_created: 'New account (JIT)', refused: 'Refused' }[a.outcome];
  return html`<h1>Test login: what the sign-in would do</h1>
<p class="muted">${r.issuer} · subject <code>${r.subject}</code> · ${r.tested_at} · nothing was changed.</p>
${r.warnings.length ? html`<div class="warning-box" role="status"><p><strong>Check these:</strong></p><ul class="problems">${r.warnings.map((w) => html`<li>${w}</li>`)}</ul></div>` : ''}
<section class="card" aria-labelledby="tr-account"><h2 id="tr-account">Account</h2>
<dl class="facts"><dt>Outcome</dt><dd${a.outcome === 'refused' ? raw(' class="refused"') : ''}><strong>${outcome}</strong>${a.code ? html` <code>${a.code}</code>` : ''}</dd>
<dt>Username</dt><dd>${a.username ? html`<code>${a.username}</code>` : html`<span class="muted">none</span>`}</dd>
<dt>Email</dt><dd>${a.email ?? html`<span class="muted">none</span>`}</dd>
<dt>Why</dt><dd>${a.message}</dd></dl></section>
<section class="card" aria-labelledby="tr-teams"><h2 id="tr-teams">Teams from the group rules</h2>
<dl class="facts"><dt>Groups claim</dt><dd><code>${r.groups.claim}</code>: ${r.groups.overage ? 'overage (the token does not list the groups)' : r.groups.present ? (r.groups.values.length ? r.groups.values.join(', ') : 'empty') : html`<strong>missing from the token</strong>`}</dd></dl>
${
  r.teams.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">Team</th><th scope="col">Role now</th><th scope="col">After this sign-in</th><th scope="col">Note</th></tr></thead>
<tbody>${r.teams.map((t) => html`<tr><td><code>${t.team}</code></td><td>${ROLE_OR_NONE(t.now)}</td><td>${ROLE_OR_NONE(t.after)}</td><td>${t.note ?? ''}</td></tr>`)}</tbody></table></div>`
    : html`<p class="empty">The connection has no group rules.</p>`
}
${r.unmatched_rules.length ? html`<p>Rules whose group did not appear: ${r.unmatched_rules.map((u) => html`<code>${u.group}</code> `)}</p>` : ''}
</section>
<section class="card" aria-labelledby="tr-claims"><h2 id="tr-claims">ID token claims</h2>
<pre><code>${JSON.stringify(r.claims, null, 2)}</code></pre></section>
<p><a href="/admin#conn-${r.connection_id}">Back to the connection</a></p>`;
}

/** A value with its Copy button (the page's data-copy script copies the element's text). */
function copyable(id: string, value: string): Html {
  return html`<code id="${id}">${value}</code> <button type="button" class="secondary" data-copy="${id}">Copy</button>`;
}

/** A SAML connection's facts on its card: the IdP as its metadata said, and what to register in the IdP, with Copy buttons. */
export function samlFacts(c: ConnectionView): Html {
  const s = c.saml;
  if (!s) return html``;
  return html`<dl class="facts">
<dt>Protocol</dt><dd>SAML 2.0 (signed ${[s.want_assertions_signed ? 'assertions' : '', s.want_response_signed ? 'responses' : ''].filter(Boolean).join(' and ')} required)</dd>
<dt>ACS URL</dt><dd>${copyable(`acs-${c.id}`, s.acs_url)} <span class="muted">(Single sign-on URL / Reply URL, HTTP-POST)</span></dd>
<dt>SP entity ID</dt><dd>${copyable(`spid-${c.id}`, s.sp_entity_id)} <span class="muted">(Audience URI / Identifier)</span></dd>
<dt>SP metadata URL</dt><dd>${copyable(`spmd-${c.id}`, s.sp_metadata_url)}</dd>
<dt>IdP entity ID</dt><dd><code>${s.entity_id}</code></dd>
<dt>IdP SSO URL</dt><dd><code>${s.sso_url}</code></dd>
<dt>IdP certificates</dt><dd><ul class="plain">${s.certificates.map((x) => html`<li><code>${x.fingerprint_sha256}</code> until ${x.not_after.slice(0, 10)}${x.expired ? html` <strong>expired</strong>` : ''}</li>`)}</ul></dd>
${s.metadata_url ? html`<dt>Metadata URL</dt><dd><code>${s.metadata_url}</code></dd>` : ''}
<dt>IdP-initiated sign-in</dt><dd>${s.allow_idp_initiated ? html`<strong>on</strong> (see the warning above)` : 'off'}</dd>
<dt>Email domains</dt><dd>${c.domains.length ? c.domains.join(', ') : html`<span class="muted">none (people sign in with /login?org=…)</span>`}</dd>
<dt>JIT</dt><dd>${c.jit ? 'on: new people get an account as members' : 'off: only people an admin added can sign in'}</dd>
<dt>Attributes</dt><dd>email <code>${c.claims.email}</code>, name <code>${c.claims.name}</code>, username <code>${c.claims.username}</code>, groups <code>${c.claims.groups}</code></dd>
<dt>Group rules</dt><dd>${c.group_roles.length ? html`<ul class="plain">${c.group_roles.map((r) => html`<li>${r.group} → <code>${r.team}</code> ${r.role}</li>`)}</ul>` : html`<span class="muted">none</span>`}</dd>
</dl>`;
}

/** The names a connection maps (an OIDC connection's claims, a SAML connection's attributes), as the forms' claims_* fields. */
function claimFields(legend: 'Claims' | 'Attributes', problems: Problems, value: (name: 'email' | 'name' | 'username' | 'groups') => string): Html {
  const field = (label: string, name: 'email' | 'name' | 'username' | 'groups') => html`<label>${label} <input name="claims_${name}" value="${value(name)}" class="short"></label>`;
  return html`<fieldset><legend>${legend}</legend><div class="row">
${field('Email', 'email')}
${field('Name', 'name')}
${field('Username', 'username')}
${field('Groups', 'groups')}
</div>${fieldError(problems, 'claims')}</fieldset>`;
}

/** The fields a SAML connection's create and edit forms share. */
function samlFields(problems: Problems, val: (name: string) => string, checked: (name: string) => boolean, editing: boolean): Html {
  const check = (name: string, label: string) => html`<label class="check"><input type="checkbox" name="${name}"${checked(name) ? raw(' checked') : ''}> ${label}</label>`;
  return html`<label>IdP metadata URL <span class="muted">(Okta: Sign On → Metadata URL; Entra ID: App Federation Metadata Url)${editing ? '; give it again to reread the metadata' : ''}</span> <input name="metadata_url" type="url" value="${val('metadata_url')}"${invalid(problems, 'metadata_url')}> ${fieldError(problems, 'metadata_url')}</label>
<label>Or the metadata XML <textarea name="metadata_xml" rows="4"${invalid(problems, 'metadata_xml')}>${val('metadata_xml')}</textarea> ${fieldError(problems, 'metadata_xml')}</label>
${fieldError(problems, 'entity_id', 'sso_url', 'certificates')}
${claimFields('Attributes', problems, (name) => val(`claims_${name}`))}
<label>Email domains <input name="domains" value="${val('domains')}"${invalid(problems, 'domains')}> ${fieldError(problems, 'domains')}</label>
<label>Group rules <span class="muted">(one per line: <code>group,team,role</code>)</span> <textarea name="group_roles" rows="3"${invalid(problems, 'group_roles')}>${val('group_roles')}</textarea> ${fieldError(problems, 'group_roles')}</label>
<div class="row">
${check('want_assertions_signed', 'Require signed assertions')}
${check('want_response_signed', 'Require signed responses')}
${check('jit', 'Create accounts on first sign-in (JIT)')}
${editing ? '' : check('enabled', 'Enabled')}
</div>
${fieldError(problems, 'want_assertions_signed')}
${check('allow_idp_initiated', 'Allow IdP-initiated sign-in (the IdP\'s app tile; such a sign-in cannot be bound to the browser — leave off unless needed)')}`;
}

/** "Add a SAML connection": from the IdP's metadata URL or XML; the ACS URL and SP entity ID to register are on the saved connection's card. */
export function samlSetup(input: { csrf: string; form: Record<string, string>; notices: Notices | undefined; open: boolean }): Html {
  const f = input.form;
  const problems = input.notices?.problems ?? [];
  const fresh = Object.keys(f).length === 0;
  // Its form only when asked for (/admin?saml=1), like the guided setup's per-IdP forms: one form at a time.
  if (fresh && !input.open) return html`<p id="saml-setup"><a href="/admin?saml=1#saml-setup">Add a SAML 2.0 connection</a> <span class="muted">(Okta, Entra ID, ADFS, PingFederate: from the IdP's metadata)</span></p>`;
  const defaults: Record<string, string> = { claims_email: 'email', claims_name: 'name', claims_username: 'username', claims_groups: 'groups' };
  return html`<details class="create" id="saml-setup" open>
<summary>Add a SAML 2.0 connection</summary>
<ol class="steps">
<li>In the IdP, create a SAML application (Okta: Create App Integration → SAML 2.0; Entra ID: Enterprise applications → New application → Create your own → SAML).</li>
<li>Create the connection here from its metadata URL (or paste the metadata XML).</li>
<li>Then register the connection's <strong>ACS URL</strong> and <strong>SP entity ID</strong>, shown on its card with Copy buttons, in the IdP, and send the attributes named below.</li>
</ol>
${input.notices ? notices(input.notices) : ''}
<form method="post" action="/admin/sso/saml" class="stack" novalidate>
${csrfField(input.csrf)}
${samlFields(problems, (n) => f[n] ?? defaults[n] ?? '', (n) => (fresh ? n === 'want_assertions_signed' || n === 'jit' || n === 'enabled' : f[n] === 'on'), false)}
<button type="submit">Create SAML connection</button>
</form>
</details>`;
}

/** A SAML connection's edit form; `failed` holds what was typed when a save was refused. */
export function samlEditForm(c: ConnectionView, csrf: string, failed: { notices: Notices; form: Record<string, string> } | undefined): Html {
  const f = failed?.form;
  const s = c.saml;
  const saved: Record<string, string> = { claims_email: c.claims.email, claims_name: c.claims.name, claims_username: c.claims.username, claims_groups: c.claims.groups, domains: c.domains.join(', '), group_roles: rulesText(c) };
  const savedChecks: Record<string, boolean> = { want_assertions_signed: s?.want_assertions_signed ?? true, want_response_signed: s?.want_response_signed ?? false, jit: c.jit, allow_idp_initiated: s?.allow_idp_initiated ?? false };
  return html`<details class="edit"${failed ? raw(' open') : ''}>
<summary>Edit</summary>
${failed ? notices(failed.notices) : ''}
<form method="post" action="/admin/sso/${c.id}/saml-edit" class="stack" novalidate>
${csrfField(csrf)}
${samlFields(failed?.notices.problems ?? [], (n) => (f ? (f[n] ?? '') : (saved[n] ?? '')), (n) => (f ? f[n] === 'on' : (savedChecks[n] ?? false)), true)}
<button type="submit">Save</button>
</form>
</details>`;
}
