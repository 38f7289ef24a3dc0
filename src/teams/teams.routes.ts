import { z } from 'zod';
import type { ApiRouter } from '../http/api-router.ts';
import { encodeCursor, nextCursorOut, pageBody, pageQuery, pageRequest } from '../http/pagination.ts';
import { fields } from '../http/validation.ts';
import { memberOut, teamOut } from './teams.responses.ts';
import type { TeamsService } from './teams.service.ts';

const badPage = { description: 'bad limit or cursor' };

export const putMemberBody = z.strictObject({ role: fields.role });
export const createTeamBody = z.strictObject({ name: fields.entityName });

export function registerTeamRoutes(api: ApiRouter, teams: TeamsService): void {
  api.add(
    { method: 'get', path: '/orgs/:org/teams', summary: 'Teams of an organization (a service account: its own team only)', tag: 'teams', auth: 'required', query: pageQuery('teams', ['string']), responses: { 200: { description: 'teams, by name, a page at a time', schema: z.object({ teams: z.array(teamOut), next_cursor: nextCursorOut }) }, 400: badPage } },
    async ({ actor, params, query }) => ({ status: 200, body: pageBody('teams', 'teams', await teams.list(actor, params.org, pageRequest(query))) }),
  );
  api.add(
    {
      method: 'post',
      path: '/orgs/:org/teams',
      summary: 'Create a team (org member or admin; the creator becomes its admin)',
      tag: 'teams',
      auth: 'required',
      body: createTeamBody,
      responses: { 201: { description: 'created', schema: teamOut }, 409: { description: 'name taken' } },
    },
    async ({ actor, params, body }) => ({ status: 201, body: await teams.create(actor, params.org, body.name) }),
  );
  api.add(
    {
      method: 'get',
      path: '/teams/:team',
      summary: 'A team and its members, by username, a page at a time (limit and cursor page the members)',
      tag: 'teams',
      auth: 'required',
      query: pageQuery('members', ['string']),
      responses: { 200: { description: 'the team', schema: teamOut.extend({ members: z.array(memberOut), next_cursor: nextCursorOut }) }, 400: badPage, 404: { description: 'no such team' } },
    },
    async ({ actor, params, query }) => {
      const { members_next, ...team } = await teams.get(actor, params.team, pageRequest(query));
      return { status: 200, body: { ...team, next_cursor: encodeCursor('members', members_next) } };
    },
  );
  api.add(
    { method: 'get', path: '/teams/:team/members/:username', summary: 'A member of a team', tag: 'teams', auth: 'required', responses: { 200: { description: 'the member', schema: memberOut }, 404: { description: 'no such member' } } },
    async ({ actor, params }) => ({ status: 200, body: await teams.getMember(actor, params.team, params.username) }),
  );
  api.add(
    {
      method: 'put',
      path: '/teams/:team/members/:username',
      summary: 'Add a member or change their role (org admin or team admin)',
      tag: 'teams',
      auth: 'required',
      body: putMemberBody,
      responses: { 200: { description: 'role changed', schema: memberOut }, 201: { description: 'member added', schema: memberOut }, 404: { description: 'no such team or user' } },
    },
    async ({ actor, params, body }) => {
      const { member, created } = await teams.putMember(actor, params.team, params.username, body.role);
      return { status: created ? 201 : 200, body: member };
    },
  );
  api.add(
    { method: 'delete', path: '/teams/:team/members/:username', summary: 'Remove a member (org admin, team admin, or yourself)', tag: 'teams', auth: 'required', responses: { 204: { description: 'removed' }, 404: { description: 'no such member' } } },
    async ({ actor, params }) => {
      await teams.removeMember(actor, params.team, params.username);
      return undefined;
    },
  );
}
