import { requireIfMatch, versionTag } from './scim-version.ts';
import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../db/dialect.ts';
import { AppError, errors } from '../errors/app-error.ts';
import { isReservedEntityName } from '../users/entity-names.ts';
import type { EntityNamesRepository } from '../users/entity-names.repository.ts';
import type { ScimDeps, ScimRepos } from './scim-deps.ts';
import type { MembershipStamp, ScimGroupFilter, ScimGroupTeam } from './scim-groups.repository.ts';
import { parseEqualityFilter } from './scim-list.ts';
import type { ListQuery } from './scim-list.ts';
import { normaliseOperations, stripSchemaPrefix } from './scim-patch.ts';
import type { Operation } from './scim-patch.ts';
import { GROUP_SCHEMA, groupSchema } from './scim-schemas.ts';
import type { ScimClient } from './scim-tokens.service.ts';
import { scimAuditActor } from './scim-tokens.service.ts';

/** A group as the SCIM routes render it (the routes add schemas, $ref and meta.location). */
export interface ScimGroupRecord {
  id: string;
  /** The team's name (a slug): the routes do not show it, the audit and logs do. */
  teamName: string;
  displayName: string;
  externalId: string | null;
  /** Undefined when the request left members out (excludedAttributes=members). */
  members?: Array<{ id: string; username: string }>;
  created: string;
  lastModified: string;
  /** meta.version and the ETag: a weak validator of what SCIM sees of the group (name, externalId, membership). */
  version: string;
}

/** The longest displayName or externalId kept: an IdP's group name is short; this bounds what one request may store. */
const MAX_TEXT = 256;
/** Team names are at most 64 characters: the slug leaves room for a "-NN" suffix. */
const MAX_SLUG_BASE = 56;

/** An attribute name without the Group schema's URN, lower-case (IdPs vary both). */
function attrName(name: string): string {
  return stripSchemaPrefix(groupSchema, name).toLowerCase();
}

function invalidValue(message: string): AppError {
  return new AppError('scim_invalid_value', message);
}

// ---------------------------------------------------------------------------------------------------------
// Filters: scim-list.ts's equality filters, read into what the repository looks up.

/** GET /Groups's filter (displayName, externalId, id with eq, joined by and); null when it can match nothing. */
function parseGroupListFilter(expr: string): ScimGroupFilter | null {
  const filter: { displayName?: string; externalId?: string; id?: string } = {};
  for (const { attribute, value } of parseEqualityFilter(expr, ['displayName', 'externalId', 'id'], GROUP_SCHEMA)) {
    const key = attribute as 'displayName' | 'externalId' | 'id';
    const previous = filter[key];
    // `a eq x and a eq y`: displayName compares case-insensitively, the others exactly.
    const same = previous === undefined || (key === 'displayName' ? previous.toLowerCase() === value.toLowerCase() : previous === value);
    if (!same) return null;
    filter[key] = value;
  }
  return filter;
}

// ---------------------------------------------------------------------------------------------------------
// PATCH. Groups read the operations themselves instead of scim-patch.ts's applyPatch (patch the whole
// resource, then write it as a PUT): a group's members are a set of changes (add these, remove those), so
// that concurrent PATCHes adding different people all land and a group of thousands is not rewritten for
// one person. The normalisation (op names in any case, URN-prefixed paths, "True"/"False", unknown
// attributes dropped, id/meta/schemas refused, replace with null as remove) is scim-patch.ts's.

type MemberOp = { kind: 'add' | 'remove' | 'replace'; ids: string[] } | { kind: 'removeAll' };

/** What a PATCH, a PUT or a POST asks of a group: undefined fields stay as they are. */
interface GroupChange {
  displayName?: string;
  externalId?: string | null;
  members: MemberOp[];
}

function displayNameOf(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw invalidValue('displayName must be a non-empty string');
  const name = v.trim();
  if (name.length > MAX_TEXT) throw invalidValue(`displayName is longer than ${MAX_TEXT} characters`);
  return name;
}

function externalIdOf(v: unknown): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string') throw invalidValue('externalId must be a string');
  if (v.length > MAX_TEXT) throw invalidValue(`externalId is longer than ${MAX_TEXT} characters`);
  return v;
}

/** Member ids of a members value: `[{value}]`, one `{value}`, or null (none). */
function memberIdsOf(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((m, i) => {
    const id = m !== null && typeof m === 'object' ? (m as Record<string, unknown>).value : undefined;
    if (typeof id !== 'string' || id === '') throw invalidValue(`members[${i}].value must be a user id (a string)`);
    return id;
  });
}

/** The ids a member filter path selects: `members[value eq "id"]` (what Okta sends to remove one person). */
function memberIdsOfFilter(filter: string): string[] {
  const ids = new Set(parseEqualityFilter(filter, ['value']).map((t) => t.value));
  // `value eq a and value eq b` selects no one.
  return ids.size === 1 ? [...ids] : [];
}

type Target = { attr: 'members'; filter?: string } | { attr: 'displayname' | 'externalid' };

/**
 * What a PATCH path (or a key of a pathless value) names. normaliseOperations has dropped the attributes a
 * Group does not keep and refused id, meta and schemas: what is left is displayName, externalId or members.
 */
function patchTarget(path: string, where: string): Target {
  const m = /^([A-Za-z][\w$-]*)(?:\[(.*)\])?(\.[A-Za-z$][\w$-]*)?$/s.exec(path.trim());
  const attr = attrName(m?.[1] ?? '');
  const filter = m?.[2];
  const sub = m?.[3];
  if (attr === 'members') {
    if (sub !== undefined) throw new AppError('scim_invalid_path', `${where}: "${path}": change members as a whole (members, or members[value eq "…"])`);
    return filter !== undefined ? { attr, filter } : { attr };
  }
  if ((attr === 'displayname' || attr === 'externalid') && filter === undefined && sub === undefined) return { attr };
  throw new AppError('scim_invalid_path', `${where}: "${path.slice(0, 100)}" is not a path of a Group`);
}

function parsePatch(body: unknown, groupId: string): GroupChange {
  const change: GroupChange = { members: [] };
  normaliseOperations(groupSchema, body, groupId).forEach(({ op, path, value }, i) => {
    const where = `operation ${i + 1}`;
    if (path !== undefined) applyTo(change, op, patchTarget(path, where), value, where);
    else for (const [key, v] of Object.entries(value as Record<string, unknown>)) applyTo(change, op, patchTarget(key, where), v, where);
  });
  return change;
}

function applyTo(change: GroupChange, op: Operation['op'], target: Target, value: unknown, where: string): void {
  switch (target.attr) {
    case 'displayname':
      if (op === 'remove') throw invalidValue(`${where}: displayName is required and cannot be removed`);
      change.displayName = displayNameOf(value);
      return;
    case 'externalid':
      change.externalId = op === 'remove' ? null : externalIdOf(value);
      return;
    case 'members':
      if (target.filter !== undefined) {
        if (op !== 'remove') throw new AppError('scim_invalid_path', `${where}: a filtered members path can only be removed (add or replace members as a whole)`);
        change.members.push({ kind: 'remove', ids: memberIdsOfFilter(target.filter) });
      } else if (op === 'remove') {
        change.members.push(value === undefined || value === null ? { kind: 'removeAll' } : { kind: 'remove', ids: memberIdsOf(value) });
      } else {
        change.members.push({ kind: op, ids: memberIdsOf(value) });
      }
  }
}

/** A full Group (POST, PUT): displayName required; members and externalId optional. */
function groupsParseResource(body: unknown, mode: 'create' | 'replace'): GroupChange {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppError('scim_invalid_syntax', 'the body must be a SCIM Group (an object)');
  const fields = new Map<string, unknown>();
  for (const [k, v] of Object.entries(body)) fields.set(attrName(k), v);
  if (!fields.has('displayname')) throw invalidValue('displayName is required');
  const change: GroupChange = { displayName: displayNameOf(fields.get('displayname')), externalId: externalIdOf(fields.get('externalid')), members: [] };
  // A PUT without members leaves them as they are: dropping a whole team by omission is not what an IdP means
  // (they change members by PATCH); `"members": []` empties it.
  if (fields.has('members')) change.members.push({ kind: mode === 'create' ? 'add' : 'replace', ids: memberIdsOf(fields.get('members')) });
  return change;
}

function applyMembers(current: ReadonlySet<string>, ops: readonly MemberOp[]): Set<string> {
  const set = new Set(current);
  for (const op of ops) {
    if (op.kind === 'removeAll') set.clear();
    else if (op.kind === 'replace') {
      set.clear();
      for (const id of op.ids) set.add(id);
    } else if (op.kind === 'add') for (const id of op.ids) set.add(id);
    else for (const id of op.ids) set.delete(id);
  }
  return set;
}

// ---------------------------------------------------------------------------------------------------------

/** "ML Engineers" → "ml-engineers": a team name (an entity name) made from an IdP's group name. */
export function slugForTeam(displayName: string): string {
  const base = displayName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, MAX_SLUG_BASE)
    .replace(/[-_]+$/, '');
  return base === '' ? 'group' : base;
}

/** The first of slug, slug-2, slug-3, … this organization may claim (free, not reserved). */
async function claimableTeamName(repos: { entities: EntityNamesRepository }, displayName: string, orgId: string): Promise<string> {
  const base = slugForTeam(displayName);
  for (let i = 1; i < 1000; i++) {
    const candidate = i === 1 ? base : `${base}-${i}`;
    if (!isReservedEntityName(candidate) && !(await repos.entities.isTaken(candidate, orgId))) return candidate;
  }
  return `${base}-${randomUUID().slice(0, 8)}`;
}

function versionOf(g: ScimGroupTeam, stamp: MembershipStamp | undefined): string {
  return versionTag([g.id, g.display_name ?? g.name, g.external_id, g.updated_at, stamp?.count ?? 0, stamp?.last_added ?? null]);
}

/** SCIM /Groups: the rules (filtering, provisioning, PATCH, deprovisioning), knowing nothing of HTTP. A Group is a team. */
export class ScimGroupsService {
  constructor(readonly deps: ScimDeps) {}

  private async records(repos: ScimRepos, orgId: string, rows: ScimGroupTeam[], withMembers: boolean): Promise<ScimGroupRecord[]> {
    const ids = rows.map((r) => r.id);
    // One after the other: inside a transaction the queries share one connection.
    const stamps = await repos.scimGroups.membershipStamps(orgId, ids);
    const members = withMembers ? await repos.scimGroups.membersOf(orgId, ids) : [];
    const stampOf = new Map(stamps.map((s) => [s.team_id, s]));
    const membersOf = new Map<string, Array<{ id: string; username: string }>>();
    for (const m of members) {
      let list = membersOf.get(m.team_id);
      if (!list) membersOf.set(m.team_id, (list = []));
      list.push({ id: m.user_id, username: m.username });
    }
    return rows.map((g) => ({
      id: g.id,
      teamName: g.name,
      displayName: g.display_name ?? g.name,
      externalId: g.external_id,
      ...(withMembers ? { members: membersOf.get(g.id) ?? [] } : {}),
      created: g.created_at,
      lastModified: g.updated_at ?? g.created_at,
      version: versionOf(g, stampOf.get(g.id)),
    }));
  }

  private async record(repos: ScimRepos, orgId: string, id: string, withMembers: boolean): Promise<ScimGroupRecord> {
    const g = await repos.scimGroups.find(orgId, id);
    if (!g) throw errors.notFound(`group "${id.slice(0, 100)}"`);
    const [record] = (await this.records(repos, orgId, [g], withMembers)) as [ScimGroupRecord];
    return record;
  }

  /** Every team of the organization (SCIM-owned or not), in creation order, one page. */
  async list(client: ScimClient, q: Pick<ListQuery, 'filter' | 'startIndex' | 'count'>, withMembers: boolean): Promise<{ total: number; resources: ScimGroupRecord[] }> {
    const filter = q.filter === undefined ? {} : parseGroupListFilter(q.filter);
    if (filter === null) return { total: 0, resources: [] };
    const repos = this.deps.store.repos;
    const page = await repos.scimGroups.list(client.orgId, filter, q.startIndex - 1, q.count);
    return { total: page.total, resources: await this.records(repos, client.orgId, page.rows, withMembers) };
  }

  async get(client: ScimClient, id: string, withMembers: boolean): Promise<ScimGroupRecord> {
    return this.record(this.deps.store.repos, client.orgId, id, withMembers);
  }

  /** POST /Groups: a new team, owned by SCIM, named after the group (the name stays when the group is renamed). */
  async create(client: ScimClient, body: unknown): Promise<ScimGroupRecord> {
    const change = groupsParseResource(body, 'create');
    const displayName = change.displayName ?? '';
    const actor = scimAuditActor(client);
    // A team name another request claimed at the same moment makes the insert fail: the next run picks another.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
          await repos.scimGroups.lockOrg(client.orgId);
          if (await repos.scimGroups.findByDisplayName(client.orgId, displayName)) throw new AppError('scim_uniqueness', `a group named "${displayName}" already exists`);
          const name = await claimableTeamName(repos, displayName, client.orgId);
          const now = new Date().toISOString();
          const teamId = randomUUID();
          await repos.entities.claim(name, 'team', client.orgId);
          await repos.teams.insert({ id: teamId, org_id: client.orgId, name, created_at: now });
          await repos.scimGroups.insert({ team_id: teamId, org_id: client.orgId, display_name: displayName, external_id: change.externalId ?? null, created_at: now, updated_at: now });
          await this.deps.audit.record(repos, actor, { orgId: client.orgId, action: 'team.create', targetType: 'team', targetId: teamId, targetName: name, details: { via: 'scim', display_name: displayName } });
          await this.writeMembers(repos, client, { id: teamId, name }, new Set(), applyMembers(new Set(), change.members), now);
          invalidate.all();
          return this.record(repos, client.orgId, teamId, true);
        });
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 3) throw err;
      }
    }
  }

  /** PUT /Groups/{id}: displayName, externalId and (when given) members as the IdP has them. */
  async replace(client: ScimClient, id: string, body: unknown, ifMatch?: string): Promise<ScimGroupRecord> {
    const change = groupsParseResource(body, 'replace');
    return this.change(client, id, change, ifMatch);
  }

  /** PATCH /Groups/{id}: the IdP's operations; SCIM owns the team from now on. */
  async patch(client: ScimClient, id: string, body: unknown, ifMatch?: string): Promise<ScimGroupRecord> {
    return this.change(client, id, parsePatch(body, id), ifMatch);
  }

  /**
   * One change of a group, in one transaction: the team locked, SCIM's ownership taken if it had not it
   * yet (audited team.scim_adopt), then the name, externalId and membership written, each audited.
   */
  private async change(client: ScimClient, id: string, change: GroupChange, ifMatch: string | undefined): Promise<ScimGroupRecord> {
    const actor = scimAuditActor(client);
    const orgId = client.orgId;
    return this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
      if (!(await repos.scimGroups.lockTeam(orgId, id))) throw errors.notFound(`group "${id.slice(0, 100)}"`);
      const g = await repos.scimGroups.find(orgId, id);
      if (!g) throw errors.notFound(`group "${id.slice(0, 100)}"`);
      const before = await this.record(repos, orgId, id, true);
      requireIfMatch(ifMatch, before.version, 'group');
      const now = new Date().toISOString();
      let changed = false;
      if (g.display_name === null) {
        // A hand-made team: SCIM's first write makes it the IdP's (Okta's "link existing group" is GET by name, then PATCH).
        await repos.scimGroups.insert({ team_id: id, org_id: orgId, display_name: g.name, external_id: null, created_at: now, updated_at: now });
        await this.deps.audit.record(repos, actor, { orgId, action: 'team.scim_adopt', targetType: 'team', targetId: id, targetName: g.name, details: { via: 'scim' } });
        changed = true;
      }
      const displayName = change.displayName ?? before.displayName;
      const externalId = change.externalId === undefined ? before.externalId : change.externalId;
      if (displayName !== before.displayName || externalId !== before.externalId) {
        if (displayName.toLowerCase() !== before.displayName.toLowerCase()) {
          await repos.scimGroups.lockOrg(orgId);
          if (await repos.scimGroups.findByDisplayName(orgId, displayName, id)) throw new AppError('scim_uniqueness', `a group named "${displayName}" already exists`);
        }
        await repos.scimGroups.update(orgId, id, { display_name: displayName, external_id: externalId });
        await this.deps.audit.record(repos, actor, {
          orgId,
          action: 'team.update',
          targetType: 'team',
          targetId: id,
          targetName: g.name,
          details: { via: 'scim', ...(displayName !== before.displayName ? { display_name: { from: before.displayName, to: displayName } } : {}), ...(externalId !== before.externalId ? { external_id: { from: before.externalId, to: externalId } } : {}) },
        });
        changed = true;
      }
      const current = new Set((before.members ?? []).map((m) => m.id));
      if (await this.writeMembers(repos, client, { id, name: g.name }, current, applyMembers(current, change.members), now)) {
        invalidate.all();
        changed = true;
      }
      if (changed) await repos.scimGroups.update(orgId, id, { updated_at: now });
      return this.record(repos, orgId, id, true);
    });
  }

  /**
   * Makes the team's membership `wanted`: new people join as members (a person already in keeps their
   * role), the others leave; each change audited. The team's "last admin" rule does not apply: the IdP
   * decides who is in. Ids that are not people of the organization are refused (400) without saying
   * whether they exist elsewhere. True when anything changed.
   */
  private async writeMembers(repos: ScimRepos, client: ScimClient, team: { id: string; name: string }, current: ReadonlySet<string>, wanted: ReadonlySet<string>, now: string): Promise<boolean> {
    const orgId = client.orgId;
    const adds = [...wanted].filter((u) => !current.has(u));
    const removes = [...current].filter((u) => !wanted.has(u));
    if (adds.length === 0 && removes.length === 0) return false;
    const eligible = new Map((await repos.scimGroups.eligibleUsers(orgId, adds)).map((u) => [u.id, u.username]));
    const unknown = adds.filter((u) => !eligible.has(u));
    if (unknown.length) {
      // Each shown cut short: an id is whatever the body says, up to a megabyte of it.
      const shown = unknown.slice(0, 5).map((u) => JSON.stringify(u.length > 100 ? `${u.slice(0, 100)}…` : u)).join(', ');
      throw invalidValue(`members: ${shown}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} ${unknown.length === 1 ? 'is not a user' : 'are not users'} of this organization`);
    }
    const actor = scimAuditActor(client);
    for (const userId of adds) {
      await repos.teams.putMember(orgId, team.id, userId, 'member', now);
      await this.deps.audit.record(repos, actor, { orgId, action: 'team.member.add', targetType: 'team', targetId: team.id, targetName: team.name, details: { via: 'scim', username: eligible.get(userId), role: 'member', previous_role: null } });
    }
    const names = await repos.scimGroups.usernames(orgId, removes);
    for (const userId of removes) {
      await repos.teams.removeMember(orgId, team.id, userId);
      await this.deps.audit.record(repos, actor, { orgId, action: 'team.member.remove', targetType: 'team', targetId: team.id, targetName: team.name, details: { via: 'scim', username: names.get(userId) ?? userId } });
    }
    return true;
  }

  /** DELETE /Groups/{id}: the team and its memberships go; a team holding service accounts stays (automation is not the IdP's). */
  async delete(client: ScimClient, id: string, ifMatch?: string): Promise<void> {
    const orgId = client.orgId;
    await this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
      if (!(await repos.scimGroups.lockTeam(orgId, id))) throw errors.notFound(`group "${id.slice(0, 100)}"`);
      const before = await this.record(repos, orgId, id, false);
      requireIfMatch(ifMatch, before.version, 'group');
      const accounts = await repos.scimGroups.countServiceAccounts(orgId, id);
      if (accounts > 0) {
        throw errors.conflict(`team "${before.teamName}" holds ${accounts} service account${accounts === 1 ? '' : 's'}: an admin must delete them or move them to another team before the group can be deleted`);
      }
      const members = (await repos.scimGroups.memberIds(orgId, id)).length;
      await repos.scimGroups.delete(orgId, id);
      await repos.teams.delete(orgId, id);
      // The name stays the organization's (a tombstone): the tracking service may still hold data under it.
      await repos.entities.release(orgId, before.teamName);
      await this.deps.audit.record(repos, scimAuditActor(client), { orgId, action: 'team.delete', targetType: 'team', targetId: id, targetName: before.teamName, details: { via: 'scim', display_name: before.displayName, members } });
      invalidate.all();
    });
  }
}
