import { requireIfMatch, versionTag } from './scim-version.ts';
import { endSessionsAfterDeactivation } from '../users/users.service.ts';
import type { Invalidate } from '../auth/invalidation.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import { AppError, errors } from '../errors/app-error.ts';
import type { OrgRow } from '../orgs/orgs.repository.ts';
import { emailDomainClaimedElsewhere } from '../users/email-domain-claims.ts';
import { deriveUsername } from '../users/provisioning.ts';
import type { UserRow } from '../users/users.repository.ts';
import { fields } from '../validation/fields.ts';
import type { ScimDeps, ScimRepos } from './scim-deps.ts';
import { listResponse, parseEqualityFilter } from './scim-list.ts';
import type { ListQuery, ListResponse } from './scim-list.ts';
import { applyPatch, readResourceBody } from './scim-patch.ts';
import { USER_SCHEMA, userSchema } from './scim-schemas.ts';
import type { ScimClient } from './scim-tokens.service.ts';
import { scimAuditActor } from './scim-tokens.service.ts';
import type { ScimPerson, ScimUserCriteria, ScimUserGroup } from './scim-users.repository.ts';

/** A SCIM User resource as trackgate answers it (RFC 7643 §4.1, the attributes of scim-schemas.ts's userSchema). */
export interface ScimUserResource {
  [attribute: string]: unknown;
  schemas: [typeof USER_SCHEMA];
  id: string;
  externalId?: string;
  userName: string;
  name: { givenName?: string; familyName?: string; formatted: string };
  displayName: string;
  emails: Array<{ value: string; type: 'work'; primary: true }>;
  active: boolean;
  groups: Array<{ value: string; display: string; $ref: string }>;
  meta: { resourceType: 'User'; created: string; lastModified: string; location: string; version: string };
}

/** Where a resource lives: the public SCIM base URL (…/scim/v2), for `meta.location` and `$ref`. */
export interface ScimLocation {
  baseUrl: string;
}

/** What a request says the person should be: the mapped attributes, read from a POST/PUT body or a patched resource. */
interface Desired {
  email: string;
  externalId: string | null;
  givenName: string | null;
  familyName: string | null;
  displayName: string | null;
  /** name.formatted: not kept, only a fallback for the display name (our own answers carry it, and Okta PUTs them back). */
  formatted: string | null;
  /** undefined: not said (a PUT without `active` leaves the status as it is). */
  active: boolean | undefined;
}

/** The attributes /Users filters on (scim-list.ts's parseEqualityFilter). */
const FILTERABLE = ['userName', 'externalId', 'id', 'emails.value', 'emails.type'] as const;

const MAX_EXTERNAL_ID = 255;
const MAX_NAME_PART = 200;

const invalidValue = (message: string) => new AppError('scim_invalid_value', message);

function optionalString(value: unknown, what: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalidValue(`${what} must be a string`);
  const v = value.trim();
  if (v.length > max) throw invalidValue(`${what} must be at most ${max} characters`);
  return v === '' ? null : v;
}

/** The mapped attributes of a User resource (already coerced to the schema). `emails` is not read: userName is the person's email. */
function desiredFrom(resource: Record<string, unknown>): Desired {
  const parsed = fields.email.safeParse(resource.userName);
  if (!parsed.success) throw invalidValue(`userName must be the person's email address${typeof resource.userName === 'string' ? `, not "${resource.userName.slice(0, 100)}"` : ''}`);
  const name = (resource.name ?? {}) as Record<string, unknown>;
  return {
    email: parsed.data,
    externalId: optionalString(resource.externalId, 'externalId', MAX_EXTERNAL_ID),
    givenName: optionalString(name.givenName, 'name.givenName', MAX_NAME_PART),
    familyName: optionalString(name.familyName, 'name.familyName', MAX_NAME_PART),
    displayName: optionalString(resource.displayName, 'displayName', MAX_NAME_PART),
    formatted: optionalString(name.formatted, 'name.formatted', MAX_NAME_PART),
    active: typeof resource.active === 'boolean' ? resource.active : undefined,
  };
}

function joinedName(givenName: string | null, familyName: string | null): string | null {
  const joined = [givenName, familyName].filter((p) => p !== null).join(' ');
  return joined === '' ? null : joined;
}

/** The name trackgate shows: the IdP's displayName, else "given family", else name.formatted, else the username. */
function displayNameOf(d: Desired, username: string): string {
  return d.displayName ?? joinedName(d.givenName, d.familyName) ?? d.formatted ?? username;
}

function render(p: ScimPerson, groups: ScimUserGroup[], at: ScimLocation): ScimUserResource {
  const name: ScimUserResource['name'] = { formatted: joinedName(p.given_name, p.family_name) ?? p.display_name };
  if (p.given_name !== null) name.givenName = p.given_name;
  if (p.family_name !== null) name.familyName = p.family_name;
  const body = {
    schemas: [USER_SCHEMA] as [typeof USER_SCHEMA],
    id: p.id,
    ...(p.external_id !== null ? { externalId: p.external_id } : {}),
    userName: p.email,
    name,
    displayName: p.display_name,
    emails: [{ value: p.email, type: 'work' as const, primary: true as const }],
    active: p.status === 'active',
    groups: groups.filter((g) => g.user_id === p.id).map((g) => ({ value: g.team_id, display: g.display_name ?? g.team_name, $ref: `${at.baseUrl}/Groups/${g.team_id}` })),
  };
  const lastModified = p.scim_updated_at !== null && p.scim_updated_at > p.updated_at ? p.scim_updated_at : p.updated_at;
  return { ...body, meta: { resourceType: 'User', created: p.created_at, lastModified, location: `${at.baseUrl}/Users/${p.id}`, version: versionTag(body) } };
}

const notFound = (id: string) => errors.notFound(`User "${id.slice(0, 100)}"`);

/**
 * SCIM /Users: the rules (filtering, provisioning, PATCH, deprovisioning), knowing nothing of HTTP.
 * A User is a person of the token's organization (never a service account), listed whoever made them
 * (an admin, SSO JIT, the CLI, SCIM): Okta's import and "match existing users" need them all. A person
 * SCIM removed (DELETE) is gone from SCIM's view until a POST of the same userName brings them back.
 *
 * The IdP is the source of truth for who may work here: SCIM deactivates an organization's last admin,
 * and the instance operator, like anyone (the organization's "last active admin" rule of the management
 * API does not apply): a departed admin must lose access, and the operator can always recover an
 * organization from the server (`trackgate` CLI, login links).
 */
export class ScimUsersService {
  constructor(readonly deps: ScimDeps) {}

  private async org(repos: ScimRepos, client: ScimClient): Promise<OrgRow> {
    const org = await repos.orgs.findById(client.orgId);
    // The token was checked a moment ago; an organization deleted since is simply not there.
    if (!org) throw errors.unauthenticated('the SCIM token\'s organization no longer exists', 'invalid_scim_token');
    return org;
  }

  private async resourceOf(repos: ScimRepos, p: ScimPerson, at: ScimLocation): Promise<ScimUserResource> {
    return render(p, await repos.scimUsers.groupsOf(p.org_id, [p.id]), at);
  }

  /**
   * The person with this id, if SCIM may see them (in the organization, not removed by SCIM), read
   * under their row's lock: two changes of one person (an IdP retrying, two IdPs) run one after the
   * other and each judges the state the other left (one deactivation, one audit event, one email check).
   */
  private async findLive(repos: ScimRepos, orgId: string, id: string): Promise<ScimPerson> {
    const seen = await repos.scimUsers.find(orgId, id);
    if (!seen || seen.removed_at !== null) throw notFound(id);
    // Locked only once known to be this organization's (lockOwner is not scoped to an organization).
    await repos.keys.lockOwner({ ownerType: 'user', ownerId: id });
    const p = await repos.scimUsers.find(orgId, id);
    if (!p || p.removed_at !== null) throw notFound(id);
    return p;
  }

  async list(client: ScimClient, query: ListQuery, at: ScimLocation): Promise<ListResponse<ScimUserResource>> {
    const emails: string[] = [];
    const externalIds: string[] = [];
    const ids: string[] = [];
    let impossible = false;
    for (const term of query.filter === undefined ? [] : parseEqualityFilter(query.filter, FILTERABLE, USER_SCHEMA)) {
      if (term.attribute === 'userName' || term.attribute === 'emails.value') emails.push(term.value);
      else if (term.attribute === 'externalId') externalIds.push(term.value);
      else if (term.attribute === 'id') ids.push(term.value);
      // Every person's one email is their work email: `emails[type eq "work"]` holds for all, any other type for none.
      else if (term.attribute === 'emails.type' && term.value.toLowerCase() !== 'work') impossible = true;
    }
    const criteria: ScimUserCriteria = { emails, externalIds, ids };
    const repos = this.deps.store.repos;
    if (impossible) return listResponse([], 0, query.startIndex);
    const [total, people] = await Promise.all([repos.scimUsers.count(client.orgId, criteria), repos.scimUsers.page(client.orgId, criteria, query.startIndex - 1, query.count)]);
    const groups = await repos.scimUsers.groupsOf(client.orgId, people.map((p) => p.id));
    return listResponse(
      people.map((p) => render(p, groups, at)),
      total,
      query.startIndex,
    );
  }

  async get(client: ScimClient, id: string, at: ScimLocation): Promise<ScimUserResource> {
    const repos = this.deps.store.repos;
    const p = await repos.scimUsers.find(client.orgId, id);
    if (!p || p.removed_at !== null) throw notFound(id);
    return this.resourceOf(repos, p, at);
  }

  /**
   * POST /Users. A userName (email) a person of the organization already has is a 409 uniqueness (Okta
   * then matches the existing user); one of a person SCIM removed brings that account back (same id,
   * username, audit history; its old keys stay revoked); an email trackgate cannot give this organization
   * (another organization's user or SSO domain) is a 409 that says nothing of the other organization.
   */
  async create(client: ScimClient, body: unknown, at: ScimLocation): Promise<ScimUserResource> {
    const desired = desiredFrom(readResourceBody(userSchema, body));
    const actor = scimAuditActor(client);
    // A revival ends the account's sessions before it commits (see change()): a failure is a 503 that
    // changed nothing, and the IdP's retry revives then; after the commit, the retry was a 409 that left
    // the revived account with the sessions its DELETE could not end.
    const prior = await this.deps.store.repos.scimUsers.findByEmail(client.orgId, desired.email);
    if (prior && prior.removed_at !== null) await this.deps.endSessionsOf(prior.id);
    const created = await this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
      const org = await this.org(repos, client);
      let existing = await repos.scimUsers.findByEmail(org.id, desired.email);
      if (existing) {
        // Read again under the row's lock: two POSTs reviving one account at once revive it once.
        await repos.keys.lockOwner({ ownerType: 'user', ownerId: existing.id });
        existing = await repos.scimUsers.find(org.id, existing.id);
      }
      if (existing && existing.removed_at === null) throw new AppError('scim_uniqueness', `a user with userName "${desired.email}" already exists in ${org.slug}`);
      if (desired.externalId !== null && (await repos.scimUsers.externalIdTaken(org.id, desired.externalId, existing?.id ?? null))) {
        throw new AppError('scim_uniqueness', `a user with externalId "${desired.externalId.slice(0, 100)}" already exists in ${org.slug}`);
      }
      const now = new Date().toISOString();
      if (existing) {
        // Back after a SCIM DELETE: the same account, with what the IdP says now.
        const status = desired.active === false ? 'deactivated' : 'active';
        await repos.users.update(org.id, existing.id, { status, display_name: displayNameOf(desired, existing.username), updated_at: now });
        await this.putScim(repos, org.id, existing.id, desired, now, null);
        await this.deps.audit.record(repos, actor, {
          orgId: org.id,
          action: status === 'active' ? 'user.reactivate' : 'user.update',
          targetType: 'user',
          targetId: existing.id,
          targetName: existing.username,
          details: { via: 'scim', rejoined: true, status },
        });
        invalidate.all();
        return { id: existing.id };
      }
      const username = await deriveUsername(repos, desired.email, org.id);
      const user = await this.deps.users.insertUser(repos, org, { email: desired.email, username, role: 'member', display_name: displayNameOf(desired, username) });
      if (desired.active === false) await repos.users.update(org.id, user.id, { status: 'deactivated', updated_at: now });
      await this.putScim(repos, org.id, user.id, desired, now, null);
      await this.deps.audit.record(repos, actor, {
        orgId: org.id,
        action: 'user.create',
        targetType: 'user',
        targetId: user.id,
        targetName: user.username,
        details: { via: 'scim', role: user.role, email: user.email, ...(desired.externalId !== null ? { external_id: desired.externalId } : {}), ...(desired.active === false ? { status: 'deactivated' } : {}) },
      });
      return { id: user.id };
    });
    return this.get(client, created.id, at);
  }

  /** PUT /Users/{id}: the mapped attributes become the body's; absent ones are cleared (externalId, name), `active` absent leaves the status. */
  async replace(client: ScimClient, id: string, body: unknown, at: ScimLocation, ifMatch?: string): Promise<ScimUserResource> {
    const resource = readResourceBody(userSchema, body);
    return this.change(client, id, at, ifMatch, () => Promise.resolve(desiredFrom(resource)));
  }

  /** PATCH /Users/{id}: the operations applied to the current resource, and the result applied as a PUT of it would be. */
  async patch(client: ScimClient, id: string, body: unknown, at: ScimLocation, ifMatch?: string): Promise<ScimUserResource> {
    return this.change(client, id, at, ifMatch, async (current) => desiredFrom(await applyPatch(userSchema, current, body)));
  }

  /** The one code path of PUT and PATCH: reads the person and their resource in the transaction, then applies what `desire` makes of it. */
  private async change(client: ScimClient, id: string, at: ScimLocation, ifMatch: string | undefined, desire: (current: ScimUserResource) => Promise<Desired>): Promise<ScimUserResource> {
    // A person who is not active may be reactivated by this request: their sessions end BEFORE it commits
    // (no session can be made for a deactivated account meanwhile). Ended only after the commit, a session
    // store failure (503) left the account active with its old sessions, and the IdP's retry (the person
    // already active) did not end them. Harmless when the request does not reactivate.
    const seen = await this.deps.store.repos.scimUsers.find(client.orgId, id);
    if (seen && seen.removed_at === null && seen.status !== 'active') await this.deps.endSessionsOf(id);
    const outcome = await this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
      const org = await this.org(repos, client);
      const person = await this.findLive(repos, org.id, id);
      const current = await this.resourceOf(repos, person, at);
      requireIfMatch(ifMatch, current.meta.version, 'user');
      return this.apply(repos, invalidate, client, org, person, await desire(current));
    });
    if (outcome.deactivated) await endSessionsAfterDeactivation(this.deps.endSessionsOf, id);
    return this.get(client, id, at);
  }

  /**
   * Makes the person what `d` says, in the caller's transaction, with one audit event when anything
   * changed. Deactivation (active true → false) revokes every live API key of the person in the same
   * transaction (the caches of every instance drop them through the invalidation log); the caller ends
   * their browser sessions after the commit. Reactivation restores the account only: revoked keys stay
   * revoked (the person makes new ones), sessions from before stay ended (ended again, in case one survived).
   */
  private async apply(repos: ScimRepos, invalidate: Invalidate, client: ScimClient, org: OrgRow, p: ScimPerson, d: Desired): Promise<{ deactivated: boolean }> {
    const now = new Date().toISOString();
    const changed: string[] = [];
    const set: Partial<UserRow> = {};
    if (d.email !== p.email) {
      // An admin's (or the operator's) email is not the IdP's to change: an account outside the SSO
      // connection's domains, moved into them, would be linked by the next SSO sign-in with that address —
      // an IdP administrator taking over a trackgate admin. People are renamed by their org's admins there.
      if (p.role === 'admin' || p.instance_admin === 1) {
        throw errors.forbidden(`the email of ${p.username}, an admin of ${org.slug}, is changed by an admin of ${org.slug} on trackgate, not through SCIM`);
      }
      await this.requireUsableEmail(repos, org, d.email);
      set.email = d.email;
      changed.push('userName');
    }
    const displayName = displayNameOf(d, p.username);
    if (displayName !== p.display_name) {
      set.display_name = displayName;
      changed.push('displayName');
    }
    const deactivating = d.active === false && p.status === 'active';
    const reactivating = d.active === true && p.status === 'deactivated';
    if (deactivating) set.status = 'deactivated';
    if (reactivating) set.status = 'active';
    if (d.externalId !== p.external_id) {
      if (d.externalId !== null && (await repos.scimUsers.externalIdTaken(org.id, d.externalId, p.id))) {
        throw new AppError('scim_uniqueness', `a user with externalId "${d.externalId.slice(0, 100)}" already exists in ${org.slug}`);
      }
      changed.push('externalId');
    }
    if (d.givenName !== p.given_name || d.familyName !== p.family_name) changed.push('name');
    if (changed.length === 0 && !deactivating && !reactivating) return { deactivated: false };

    if (Object.keys(set).length) {
      try {
        await repos.users.update(org.id, p.id, { ...set, updated_at: now });
      } catch (err) {
        // Another transaction took the email between the check and the write.
        if (isUniqueViolation(err)) throw errors.conflict(`the email ${d.email} cannot be used for an account in ${org.slug}`, 'email_unavailable');
        throw err;
      }
    }
    await this.putScim(repos, org.id, p.id, d, now, null);
    let keysRevoked = 0;
    if (deactivating) {
      const hashes = await repos.keys.revokeAllForOwner(org.id, { ownerType: 'user', ownerId: p.id }, now);
      keysRevoked = hashes.length;
      for (const h of hashes) invalidate.key(h);
    }
    // The email, display name and status are part of every cached identity of the person.
    if (set.email !== undefined || set.display_name !== undefined || set.status !== undefined) invalidate.all();
    const action = deactivating ? 'user.deactivate' : reactivating ? 'user.reactivate' : 'user.update';
    await this.deps.audit.record(repos, scimAuditActor(client), {
      orgId: org.id,
      action,
      targetType: 'user',
      targetId: p.id,
      targetName: p.username,
      details: { via: 'scim', ...(changed.length ? { changed } : {}), ...(set.email !== undefined ? { email: set.email, previous_email: p.email } : {}), ...(deactivating ? { keys_revoked: keysRevoked } : {}) },
    });
    return { deactivated: deactivating };
  }

  /**
   * DELETE /Users/{id}: the person leaves the organization. Deactivated, every key revoked, out of every
   * team, every SSO identity unlinked (a later sign-in links again only by the email rules), browser
   * sessions ended; the users row stays (usernames are never reused, the audit names them) and SCIM
   * answers 404 for them until a POST of the same userName brings the account back.
   */
  async remove(client: ScimClient, id: string, at: ScimLocation, ifMatch?: string): Promise<void> {
    await this.deps.invalidator.transaction(this.deps.store, async (repos, invalidate) => {
      const org = await this.org(repos, client);
      const p = await this.findLive(repos, org.id, id);
      requireIfMatch(ifMatch, (await this.resourceOf(repos, p, at)).meta.version, 'user');
      const now = new Date().toISOString();
      if (p.status !== 'deactivated') await repos.users.update(org.id, p.id, { status: 'deactivated', updated_at: now });
      const hashes = await repos.keys.revokeAllForOwner(org.id, { ownerType: 'user', ownerId: p.id }, now);
      const teams = await repos.scimUsers.leaveAllTeams(org.id, p.id);
      const identities = await repos.sso.identitiesOfUser(org.id, p.id);
      for (const identity of identities) await repos.sso.deleteIdentity(org.id, p.id, identity.id);
      await repos.scimUsers.put({ user_id: p.id, org_id: org.id, external_id: p.external_id, given_name: p.given_name, family_name: p.family_name, removed_at: now, updated_at: now });
      await this.deps.audit.record(repos, scimAuditActor(client), {
        orgId: org.id,
        action: 'user.remove',
        targetType: 'user',
        targetId: p.id,
        targetName: p.username,
        details: { via: 'scim', keys_revoked: hashes.length, teams_left: teams.length, identities_unlinked: identities.length },
      });
      invalidate.all();
    });
    await endSessionsAfterDeactivation(this.deps.endSessionsOf, id);
  }

  private async putScim(repos: ScimRepos, orgId: string, userId: string, d: Desired, now: string, removedAt: string | null): Promise<void> {
    try {
      await repos.scimUsers.put({ user_id: userId, org_id: orgId, external_id: d.externalId, given_name: d.givenName, family_name: d.familyName, removed_at: removedAt, updated_at: now });
    } catch (err) {
      // Two requests gave one externalId to two people at once: the unique index decides.
      if (isUniqueViolation(err)) throw new AppError('scim_uniqueness', `a user with externalId "${(d.externalId ?? '').slice(0, 100)}" already exists`);
      throw err;
    }
  }

  /** insertUser's email rules for a changed userName: this organization's own clash says so, any other says only "cannot be used". */
  private async requireUsableEmail(repos: ScimRepos, org: OrgRow, email: string): Promise<void> {
    const unusable = () => errors.conflict(`the email ${email} cannot be used for an account in ${org.slug}`, 'email_unavailable');
    if (await emailDomainClaimedElsewhere(repos, email, org.id)) throw unusable();
    if (await repos.users.emailTaken(email)) {
      if (await repos.users.findByEmail(org.id, email)) throw errors.conflict(`a user with email "${email}" already exists in ${org.slug}`, 'email_taken');
      throw unusable();
    }
  }
}
