/**
 * People and groups through SCIM, as an IdP provisions them: the request bodies Okta and Entra ID send
 * (test/support/scim.ts is the client), for the end-to-end, isolation and abuse tests.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { TestApp } from './app.ts';
import { GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA } from './scim.ts';
import type { ScimClient } from './scim.ts';

/** POST /Users as Okta sends it (with a password and groups it must ignore); asserts 201 and returns the resource. */
export async function provisionUser(scim: ScimClient, email: string, extra: Record<string, unknown> = {}): Promise<{ id: string; userName: string; [k: string]: unknown }> {
  const local = email.split('@')[0]!;
  const r = await scim.request('POST', '/Users', {
    schemas: [USER_SCHEMA],
    userName: email,
    name: { givenName: local, familyName: 'Tester' },
    emails: [{ primary: true, value: email, type: 'work' }],
    displayName: `${local} Tester`,
    externalId: `ext-${local}`,
    active: true,
    password: 'not-kept-1!',
    groups: [],
    ...extra,
  });
  assert.equal(r.status, 201, `POST /Users ${email}: ${r.text}`);
  assert.equal(typeof r.body.id, 'string', r.text);
  return r.body;
}

/** POST /Groups; asserts 201 and returns the resource. */
export async function provisionGroup(scim: ScimClient, displayName: string, memberIds: string[] = [], extra: Record<string, unknown> = {}): Promise<{ id: string; displayName: string; [k: string]: unknown }> {
  const r = await scim.request('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName, members: memberIds.map((value) => ({ value })), ...extra });
  assert.equal(r.status, 201, `POST /Groups ${displayName}: ${r.text}`);
  return r.body;
}

/** The SCIM id of the user with this userName, found as Okta does (GET /Users?filter=userName eq "…"). */
export async function scimIdOf(scim: ScimClient, email: string): Promise<string> {
  const r = await scim.request('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}&startIndex=1&count=100`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.totalResults, 1, `userName eq ${email}: ${r.text}`);
  return r.body.Resources[0].id;
}

/**
 * The ways an IdP says "active" (false to deprovision, true to bring back):
 * - okta-patch: Okta's pathless replace with a real boolean;
 * - entra-patch: Entra ID's default, a capitalised op, a path and the string "False";
 * - entra-flag: Entra ID with aadOptscim062020, lower-case op, a path and a real boolean;
 * - okta-put: apps made with Okta's wizard PUT the whole user (GET first, as Okta does).
 */
export const ACTIVE_FORMS = ['okta-patch', 'entra-patch', 'entra-flag', 'okta-put'] as const;
export type ActiveForm = (typeof ACTIVE_FORMS)[number];

/** Sets `active` through SCIM in one of the IdPs' forms; resolves with the answer (status checked by the caller). */
export async function setActive(scim: ScimClient, id: string, active: boolean, form: ActiveForm): Promise<{ status: number; text: string; body: any }> {
  const patch = (op: unknown) => scim.request('PATCH', `/Users/${id}`, { schemas: [PATCH_SCHEMA], Operations: [op] });
  switch (form) {
    case 'okta-patch':
      return patch({ op: 'replace', value: { active } });
    case 'entra-patch':
      return patch({ op: 'Replace', path: 'active', value: active ? 'True' : 'False' });
    case 'entra-flag':
      return patch({ op: 'replace', path: 'active', value: active });
    case 'okta-put': {
      const current = await scim.request('GET', `/Users/${id}`);
      assert.equal(current.status, 200, current.text);
      const { meta: _meta, groups: _groups, ...rest } = current.body;
      return scim.request('PUT', `/Users/${id}`, { ...rest, active });
    }
  }
}

/** What the database holds of a user, read directly (a SCIM answer could lie about what it did). */
export async function userRow(app: TestApp, id: string): Promise<{ email: string; username: string; role: string; status: string; instance_admin: number; display_name: string; org_id: string } | undefined> {
  const r = await sql<{ email: string; username: string; role: string; status: string; instance_admin: number; display_name: string; org_id: string }>`select email, username, role, status, instance_admin, display_name, org_id from users where id = ${id}`.execute(app.gw.core.database.db);
  const row = r.rows[0];
  return row ? { ...row, instance_admin: Number(row.instance_admin) } : undefined;
}

/** The user ids in a team (team_members rows), sorted. */
export async function teamMemberIds(app: TestApp, teamId: string): Promise<string[]> {
  const r = await sql<{ user_id: string }>`select user_id from team_members where team_id = ${teamId}`.execute(app.gw.core.database.db);
  return r.rows.map((x) => x.user_id).sort();
}
