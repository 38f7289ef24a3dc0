import type { TeamRole } from '../../auth/principal.ts';
import type { TeamView } from '../../teams/teams.service.ts';
import { cell, html, notices } from '../../html/html.ts';
import type { Notices } from '../../html/html.ts';
import { csrfField } from '../../http/csrf.ts';
import { fieldProblem, page } from './common.ts';
import type { Viewer } from './common.ts';

export interface TeamsInput {
  viewer: Viewer;
  /** What the viewer sees: every team of the organization for its admins, their own teams for everyone else. */
  teams: TeamView[];
  notices?: Notices;
  form?: Record<string, string>;
}

/** /teams: the organization's teams (an org admin's view) or the viewer's, and the create form for org admins. */
export function teamsPage(input: TeamsInput): string {
  const { viewer: v, teams } = input;
  const form = input.form ?? {};
  const admin = v.role === 'admin';
  const roleOf = new Map<string, TeamRole>(v.teams.map((t) => [t.name, t.role]));
  const { problem: nameProblem, rest } = fieldProblem(input.notices, 'name', 'team-name-problem');
  const body = html`<h1>Teams</h1>
<p class="muted">${admin ? html`Every team of <code>${v.orgSlug}</code>.` : 'The teams you belong to.'} A team's members, service accounts and their keys are on its page.</p>
${notices({ notice: input.notices?.notice })}
<section class="card" aria-labelledby="teams-list">
<h2 id="teams-list">${admin ? 'Teams of the organization' : 'Your teams'}</h2>
${
  teams.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Team</th><th scope="col">Your role</th><th scope="col">Created (UTC)</th></tr></thead>
<tbody>${teams.map((t) => html`<tr><td><a href="/teams/${encodeURIComponent(t.name)}"><code>${t.name}</code></a></td><td>${roleOf.get(t.name) ?? html`<span class="muted">not a member</span>`}</td><td>${cell(t.created_at)}</td></tr>`)}</tbody>
</table></div>`
    : html`<p class="empty">${admin ? 'This organization has no teams yet.' : 'You are not in a team yet; an organization admin or a team admin can add you.'}</p>`
}
</section>
${
  admin
    ? html`<section class="card" aria-labelledby="create-team">
<h2 id="create-team">Create a team</h2>
${notices(rest)}
<form method="post" action="/teams" class="row">
${csrfField(v.csrf)}
<label>Name <input name="name" required maxlength="64" value="${form.name ?? ''}" placeholder="e.g. ml-research"${nameProblem ? html` aria-invalid="true" aria-describedby="team-name-problem"` : ''}>${nameProblem ?? ''}</label>
<button type="submit">Create team</button>
</form>
<p class="muted">You become the team's admin. The name is used in URLs and by the tracking client (as the entity), and must be unused by any user, team or service account.</p>
</section>`
    : ''
}`;
  return page(v, 'Teams', 'teams', body);
}
