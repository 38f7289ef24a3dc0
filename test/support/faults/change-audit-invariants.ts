/**
 * What "no half-done change" means for the rows trackgate writes, checked against a database an instance
 * was killed on: every change row has the audit event its service writes in the same transaction, and every
 * audit event's change is there. Reads whole tables (one organization per test database) through `query`,
 * so that the same checks run on PostgreSQL and on SQLite.
 */
export type Row = Record<string, unknown>;
export type Query = (text: string) => Promise<Row[]>;

/** What existed before the changes under test began: rows made by the CLI or the setup, and the audit log up to then. */
export interface Baseline {
  keyIds: Set<string>;
  userIds: Set<string>;
  /** Memberships by team id → username → role. */
  members: Map<string, Map<string, string>>;
  auditSeq: number;
}

function str(v: unknown): string {
  return v === null || v === undefined ? '' : String(v as string);
}

function details(e: Row): Record<string, unknown> {
  return e.details ? (JSON.parse(str(e.details)) as Record<string, unknown>) : {};
}

async function memberships(query: Query): Promise<Map<string, Map<string, string>>> {
  const rows = await query('select tm.team_id, tm.role, u.username from team_members tm join users u on u.id = tm.user_id');
  const out = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const team = str(r.team_id);
    if (!out.has(team)) out.set(team, new Map());
    out.get(team)!.set(str(r.username), str(r.role));
  }
  return out;
}

export async function baseline(query: Query): Promise<Baseline> {
  const seq = await query('select max(seq) as s from audit_events');
  return {
    keyIds: new Set((await query('select id from api_keys')).map((r) => str(r.id))),
    userIds: new Set((await query('select id from users')).map((r) => str(r.id))),
    members: await memberships(query),
    auditSeq: Number(seq[0]?.s ?? 0),
  };
}

/** Every violation found, in words (empty: the database is whole). */
export async function changeAuditViolations(query: Query, base: Baseline): Promise<string[]> {
  const bad: string[] = [];
  const keys = await query('select * from api_keys');
  const audit = (await query('select * from audit_events')).sort((a, b) => Number(a.seq) - Number(b.seq));
  const users = await query('select * from users');
  const identities = await query('select * from external_identities');
  const teams = await query('select id, name from teams');
  const keyById = new Map(keys.map((k) => [str(k.id), k]));
  const userById = new Map(users.map((u) => [str(u.id), u]));
  const of = (action: string) => audit.filter((e) => e.action === action);

  // Keys: created ↔ key.create; rotated ↔ key.rotate (with the predecessor revoked or put on its grace).
  const created = new Set(of('key.create').map((e) => str(e.target_id)));
  const rotations = new Map<string, Row>();
  for (const e of of('key.rotate')) {
    const successorId = str(details(e).new_key_id);
    if (rotations.has(successorId)) bad.push(`two key.rotate events name successor ${successorId}`);
    rotations.set(successorId, e);
    const successor = keyById.get(successorId);
    if (!successor) bad.push(`key.rotate of ${str(e.target_id)} (seq ${str(e.seq)}) names successor ${successorId}, which does not exist`);
    else if (str(successor.rotated_from_id) !== str(e.target_id)) bad.push(`successor ${successorId} says it replaces ${str(successor.rotated_from_id)}, its key.rotate says ${str(e.target_id)}`);
    const predecessor = keyById.get(str(e.target_id));
    if (!predecessor) {
      bad.push(`key.rotate names predecessor ${str(e.target_id)}, which does not exist`);
      continue;
    }
    const grace = Number(details(e).grace_seconds);
    if (grace === 0) {
      if (predecessor.revoked_at === null) bad.push(`key ${str(predecessor.id)} was rotated with grace 0 but is not revoked`);
    } else if (predecessor.revoked_at === null && (predecessor.expires_at === null || Date.parse(str(predecessor.expires_at)) > Date.parse(str(e.created_at)) + grace * 1000)) {
      bad.push(`key ${str(predecessor.id)} was rotated with grace ${grace}s at ${str(e.created_at)} but expires ${str(predecessor.expires_at) || 'never'}`);
    }
  }
  const successorsOf = new Map<string, number>();
  for (const k of keys) {
    const id = str(k.id);
    if (k.rotated_from_id !== null) {
      successorsOf.set(str(k.rotated_from_id), (successorsOf.get(str(k.rotated_from_id)) ?? 0) + 1);
      if (!rotations.has(id)) bad.push(`key ${id} replaces ${str(k.rotated_from_id)} but no key.rotate event records it`);
    } else if (!base.keyIds.has(id) && !created.has(id)) {
      bad.push(`key ${id} exists without its key.create event`);
    }
  }
  for (const [id, n] of successorsOf) if (n > 1) bad.push(`key ${id} has ${n} successors`);
  for (const id of created) if (!keyById.has(id)) bad.push(`key.create names key ${id}, which does not exist`);

  // Revocations: a revoked key ↔ key.revoke, a rotation with grace 0, or its service account's deletion.
  const revokedBy = new Set([...of('key.revoke').map((e) => str(e.target_id)), ...of('key.rotate').filter((e) => Number(details(e).grace_seconds) === 0).map((e) => str(e.target_id))]);
  const deletedAccounts = new Set(of('service_account.delete').map((e) => str(e.target_id)));
  for (const k of keys) {
    if (k.revoked_at === null) continue;
    if (!revokedBy.has(str(k.id)) && !deletedAccounts.has(str(k.service_account_id))) bad.push(`key ${str(k.id)} is revoked without a key.revoke event`);
  }
  for (const e of of('key.revoke')) if (keyById.get(str(e.target_id))?.revoked_at == null) bad.push(`key.revoke (seq ${str(e.seq)}) names key ${str(e.target_id)}, which is not revoked`);

  // Users and SSO identities: made ↔ user.create / sso.identity.link.
  const userCreates = new Set(of('user.create').map((e) => str(e.target_id)));
  for (const u of users) if (!base.userIds.has(str(u.id)) && !userCreates.has(str(u.id))) bad.push(`user ${str(u.username)} exists without its user.create event`);
  for (const id of userCreates) if (!userById.has(id)) bad.push(`user.create names user ${id}, which does not exist`);
  const links = of('sso.identity.link');
  for (const i of identities) {
    if (!links.some((e) => str(e.target_id) === str(i.user_id) && str(details(e).subject) === str(i.subject))) bad.push(`identity ${str(i.subject)} of user ${str(i.user_id)} exists without its sso.identity.link event`);
  }
  for (const e of links) {
    if (!identities.some((i) => str(i.user_id) === str(e.target_id) && str(i.subject) === str(details(e).subject))) bad.push(`sso.identity.link (seq ${str(e.seq)}) names an identity that does not exist`);
  }
  for (const e of of('sso.login')) if (!userById.has(str(e.target_id))) bad.push(`sso.login (seq ${str(e.seq)}) names user ${str(e.target_id)}, who does not exist`);

  // Memberships: the baseline replayed with every later event (the API's and SSO group sync's) gives the table.
  const teamIdByName = new Map(teams.map((t) => [str(t.name), str(t.id)]));
  const replayed = new Map([...base.members].map(([t, m]) => [t, new Map(m)]));
  const team = (id: string) => {
    if (!replayed.has(id)) replayed.set(id, new Map());
    return replayed.get(id)!;
  };
  for (const e of audit) {
    if (Number(e.seq) <= base.auditSeq) continue;
    const d = details(e);
    if (e.action === 'team.member.add' || e.action === 'team.member.update') team(str(e.target_id)).set(str(d.username), str(d.role));
    else if (e.action === 'team.member.remove') team(str(e.target_id)).delete(str(d.username));
    else if (e.action === 'team.create') {
      // Whoever creates a team (a user of its organization) becomes its admin in the same transaction.
      if (e.actor_type === 'user' && users.some((u) => str(u.id) === str(e.actor_id) && u.org_id === e.org_id)) team(str(e.target_id)).set(str(e.actor_name), 'admin');
    } else if (e.action === 'sso.login' && Array.isArray(d.team_changes)) {
      for (const change of d.team_changes as string[]) {
        const m = /^(.*):([a-z]+)->([a-z]+)$/.exec(change);
        if (!m) continue;
        const id = teamIdByName.get(m[1]!) ?? '';
        if (m[3] === 'none') team(id).delete(str(e.target_name));
        else team(id).set(str(e.target_name), m[3]!);
      }
    }
  }
  const actual = await memberships(query);
  for (const id of new Set([...replayed.keys(), ...actual.keys()])) {
    const want = [...(replayed.get(id) ?? new Map<string, string>())].sort().join(',');
    const have = [...(actual.get(id) ?? new Map<string, string>())].sort().join(',');
    if (want !== have) bad.push(`team ${id}: members [${have}] but the audit log says [${want}]`);
  }
  return bad;
}
