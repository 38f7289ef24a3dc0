import { ROLES } from '../../auth/principal.ts';
import type { TeamRole } from '../../auth/principal.ts';
import type { ServiceAccountView } from '../../service-accounts/service-accounts.service.ts';
import type { TeamMemberOut } from '../../teams/teams.service.ts';
import type { NewKeyFlash } from '../flash.ts';
import { cell, html, notices, options, when } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import type { Notices } from '../../html/html.ts';
import { buttonForm, fieldProblem, page } from './common.ts';
import { KEY_FORM_FIELD, serviceAccountKeysBlock } from './team-keys.ts';
import type { KeyView } from '../../keys/keys.service.ts';
import type { Viewer } from './common.ts';
import { newKeyPanel } from './settings.ts';
import { leakedNotices } from './leaked-notices.ts';
import type { LeakedCredentialView } from '../../secret-scanning/secret-scanning.service.ts';
import { keylessBadge, keylessCheckbox, RULE_FORM_FIELD, trustRulesBlock } from './team-trust-rules.ts';
import type { FederatedCredentialView } from '../../federation/federated-credentials.service.ts';

export interface TeamInput {
  viewer: Viewer;
  team: { name: string; org: string; created_at: string };
  plan: 'standard' | 'enterprise';
  members: TeamMemberOut[];
  myTeamRole: TeamRole | null;
  /** Org admins and the team's admins. */
  canManage: boolean;
  /** The organization's IdP owns the team through SCIM: members are added and removed there, not here (roles stay editable). */
  scimManaged: boolean;
  /** null: the viewer may not see them (not a member of the team). */
  serviceAccounts: ServiceAccountView[] | null;
  /** The API keys of each keyed account the viewer manages (none for the others). */
  keys: ReadonlyMap<string, KeyView[]>;
  /** The trust rules of each account the viewer manages (none for the others). */
  trustRules: ReadonlyMap<string, FederatedCredentialView[]>;
  newKey?: NewKeyFlash | undefined;
  /** Credentials of the team's service accounts a secret scanner reported public (shown to those who manage the team). */
  leaked?: readonly LeakedCredentialView[];
  notices?: Notices;
  form?: Record<string, string>;
}

export function teamPage(input: TeamInput): string {
  const { viewer: v, team, canManage, scimManaged } = input;
  const base = `/teams/${encodeURIComponent(team.name)}`;
  const enterprise = input.plan === 'enterprise';
  // A refused trust-rule form shows its problems and what was typed beside itself, not at the top nor in the other forms.
  const ruleFormFor = input.form?.[RULE_FORM_FIELD];
  const keyFormFor = input.form?.[KEY_FORM_FIELD];
  // The invite form is the one that posts `kind`; what it refused shows inside its section, the name's problem beside the name.
  const inviteRefused = !ruleFormFor && !keyFormFor && input.form?.kind !== undefined;
  const form = ruleFormFor || keyFormFor ? {} : (input.form ?? {});
  const refusal = { error: input.notices?.error, problems: input.notices?.problems };
  const topNotices = ruleFormFor || keyFormFor || inviteRefused ? { notice: input.notices?.notice } : (input.notices ?? {});
  const ruleRefusal = ruleFormFor ? refusal : null;
  const invite = fieldProblem(inviteRefused ? refusal : undefined, 'name', 'invite-name-problem');
  const memberRows = input.members.map((m) => {
    const self = m.username === v.username;
    return html`<tr>
<td><code>${m.username}</code>${self ? html` <span class="badge">you</span>` : ''}</td>
<td>${m.display_name}</td>
<td>${m.email ?? ''}</td>
<td>${
      canManage
        ? html`<form method="post" action="${base}/members/${m.username}" class="inline">${csrfField(v.csrf)}<select name="role" aria-label="Role of ${m.username}">${options(ROLES, m.role)}</select> <button type="submit" class="secondary">Change</button></form>`
        : m.role
    }</td>
<td class="actions">${
      !scimManaged && (canManage || self)
        ? buttonForm({ action: `${base}/members/${m.username}/remove`, csrf: v.csrf, label: self ? 'Leave' : 'Remove', danger: true, confirm: self ? `Leave the team ${team.name}?` : `Remove ${m.username} from ${team.name}?` })
        : ''
    }</td>
</tr>`;
  });

  const saSection = !enterprise && (input.serviceAccounts === null || input.serviceAccounts.length === 0)
    ? html`<p class="notice">Service accounts are an enterprise feature: an API key that is not tied to a person, with write access to this team, for nightly jobs and pipelines. Your organization is on the ${input.plan} plan; ask the operator to move it to the enterprise plan.</p>`
    : input.serviceAccounts === null
      ? html`<p class="muted">Only members of this team and organization admins can see its service accounts.</p>`
      : html`${!enterprise ? html`<p class="notice">Service accounts are an enterprise feature and your organization is on the ${input.plan} plan: these accounts' keys no longer work.</p>` : ''}${
          input.serviceAccounts.length
            ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Username</th><th scope="col">Name</th><th scope="col">Scope</th><th scope="col">Created (UTC)</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${input.serviceAccounts.map(
                (sa) => html`<tr><td><code>${sa.username}</code>${keylessBadge(sa)}</td><td>${sa.name}</td><td>${sa.scope === 'org' ? 'organization (default team)' : 'team'}</td><td>${cell(sa.created_at)}</td>
<td class="actions">${canManage && (sa.scope === 'team' || v.role === 'admin') ? buttonForm({ action: `${base}/service-accounts/${sa.id}/delete`, csrf: v.csrf, label: 'Delete', danger: true, confirm: `Delete the service account ${sa.username}? Its keys stop working at once.` }) : ''}</td></tr>`,
              )}</tbody></table></div>
${input.serviceAccounts.filter((sa) => input.keys.has(sa.id)).map((sa) =>
  serviceAccountKeysBlock({ v, base, sa, keys: input.keys.get(sa.id) ?? [], mayCreate: enterprise, form: input.form ?? {}, refused: keyFormFor === sa.id ? refusal : null }),
)}
${input.serviceAccounts.filter((sa) => input.trustRules.has(sa.id)).map((sa) => trustRulesBlock({ v, base, sa, rules: input.trustRules.get(sa.id) ?? [], form: input.form ?? {}, refused: ruleFormFor === sa.id ? ruleRefusal : null }))}
<p class="muted">A run started with a service account's key can be attributed to a team member with <code>WANDB_USERNAME</code>.</p>`
            : html`<p class="empty">No service accounts yet.</p>`
        }`;

  const body = html`<h1>Team <code>${team.name}</code></h1>
<p class="muted">Organization <code>${team.org}</code> · created ${when(team.created_at)} · your role: ${input.myTeamRole ?? (v.role === 'admin' ? 'organization admin' : 'not a member')}</p>
${notices(topNotices)}
${leakedNotices(input.leaked ?? [], { csrf: v.csrf, dismissBase: `${base}/leaked-credentials`, whose: 'team' })}
${input.newKey ? newKeyPanel(input.newKey) : ''}
<section class="card" aria-labelledby="members">
<h2 id="members">Members</h2>
${scimManaged ? html`<p class="notice" data-scim-managed>Managed by your IdP (SCIM): people join and leave this team through your identity provider's groups, not here.${canManage ? ' You can still change a member\'s role.' : ''}</p>` : ''}
${
  input.members.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Username</th><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${memberRows}</tbody></table></div>`
    : html`<p class="empty">This team has no members.</p>`
}
${
  canManage && scimManaged
    ? enterprise
      ? html`<h3>Create a service account</h3>
${notices(invite.rest)}
<form method="post" action="${base}/members" class="row">
${csrfField(v.csrf)}
<input type="hidden" name="kind" value="service">
<label>Name <input name="name" required maxlength="100" value="${form.name ?? ''}" placeholder="the service's name"${invite.problem ? html` aria-invalid="true" aria-describedby="invite-name-problem"` : ''}>${invite.problem ?? ''}</label>
${keylessCheckbox(form)}
<button type="submit">Create</button>
</form>
<p class="muted">A service account is an API key not tied to a person, with write access to this team; its key is shown once, here.</p>`
      : ''
    : canManage
    ? html`<h3>Invite a new member</h3>
${notices(invite.rest)}
<form method="post" action="${base}/members" class="row" data-invite-form>
${csrfField(v.csrf)}
<label>Type <select name="kind">${options(['user', 'service'] as const, form.kind ?? 'user', { user: 'User', service: 'Service' })}</select></label>
<label>Username or name <input name="name" required maxlength="100" value="${form.name ?? ''}" placeholder="username, or the service's name"${invite.problem ? html` aria-invalid="true" aria-describedby="invite-name-problem"` : ''}>${invite.problem ?? ''}</label>
<label data-role-field>Role <select name="role">${options(ROLES, form.role ?? 'member')}</select></label>
${keylessCheckbox(form)}
<button type="submit">Create</button>
</form>
<p class="muted">User: a person of your organization, by username, with the role chosen. Service: a service account${enterprise ? '' : ' (enterprise plan only)'} — an API key not tied to a person, with write access to this team (it has no role to choose); its key is shown once, here.</p>`
    : html`<p class="muted">Organization admins and admins of this team manage its members.</p>`
}
</section>
<section class="card" aria-labelledby="service-accounts">
<h2 id="service-accounts">Service accounts</h2>
${saSection}
</section>`;
  return page(v, `Team ${team.name}`, 'teams', body);
}

