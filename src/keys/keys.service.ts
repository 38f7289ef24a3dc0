import { randomUUID } from 'node:crypto';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator } from '../auth/invalidation.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Repositories, Store } from '../db/store.ts';
import { errors } from '../http/errors.ts';
import type { OrgAccess, OrgContext } from '../orgs/org-access.ts';
import type { OrgRow } from '../orgs/orgs.repository.ts';
import { generateKey } from './key-format.ts';
import type { ApiKeyRow } from './keys.repository.ts';

const DAY_MS = 86_400_000;

export interface KeyView {
  id: string;
  key_id: string;
  name: string;
  owner: { type: 'user' | 'service_account'; id: string };
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  rotated_from: string | null;
}

export interface NewKeyView extends KeyView {
  /** The secret: shown in this response only. */
  key: string;
}

export function keyView(row: ApiKeyRow): KeyView {
  return {
    id: row.id,
    key_id: row.key_id,
    name: row.name,
    owner: { type: row.owner_type, id: (row.owner_type === 'user' ? row.user_id : row.service_account_id) ?? '' },
    created_at: row.created_at,
    last_used_at: row.last_used_at,
    expires_at: row.expires_at,
    rotated_from: row.rotated_from_id,
  };
}

export interface IssueKeyInput {
  org: OrgRow;
  ownerType: 'user' | 'service_account';
  ownerId: string;
  name: string;
  expiresInDays?: number | undefined;
  createdBy: string | null;
  rotatedFromId?: string | null;
}

/**
 * Decides whether an actor may manage a key that is not its own personal key
 * (service-account keys are governed by team roles). Returns true to allow.
 */
export type KeyManagePolicy = (actor: Actor, ctx: OrgContext, row: ApiKeyRow) => Promise<boolean>;

export class KeysService {
  private readonly policies = new Map<string, KeyManagePolicy>();

  constructor(
    private readonly store: Store,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
  ) {}

  registerManagePolicy(ownerType: 'service_account', policy: KeyManagePolicy): void {
    this.policies.set(ownerType, policy);
  }

  /** The expiry a new key gets under the organization's maximum-lifetime policy; a 400 when asked for more. */
  expiryFor(org: OrgRow, expiresInDays: number | undefined, now: number): string | null {
    const cap = org.max_key_lifetime_days;
    if (cap !== null && expiresInDays !== undefined && expiresInDays > cap) {
      throw errors.validation(`expires_in_days: your organization allows keys to live at most ${cap} days`);
    }
    const days = expiresInDays ?? cap ?? null;
    return days === null ? null : new Date(now + days * DAY_MS).toISOString();
  }

  /** Creates a key row inside the caller's transaction and returns it with its secret. */
  async issue(repos: Repositories, input: IssueKeyInput): Promise<{ row: ApiKeyRow; key: string }> {
    const now = Date.now();
    const generated = generateKey(input.ownerType);
    const row: ApiKeyRow = {
      id: randomUUID(),
      org_id: input.org.id,
      owner_type: input.ownerType,
      user_id: input.ownerType === 'user' ? input.ownerId : null,
      service_account_id: input.ownerType === 'service_account' ? input.ownerId : null,
      name: input.name,
      key_id: generated.keyId,
      key_hash: generated.hash,
      created_at: new Date(now).toISOString(),
      created_by: input.createdBy,
      last_used_at: null,
      expires_at: this.expiryFor(input.org, input.expiresInDays, now),
      revoked_at: null,
      rotated_from_id: input.rotatedFromId ?? null,
    };
    await repos.keys.insert(row);
    return { row, key: generated.key };
  }

  async createPersonal(actor: Actor, input: { name: string; expires_in_days?: number | undefined }): Promise<NewKeyView> {
    const p = actor.principal;
    if (p.type !== 'user') throw errors.forbidden('service accounts cannot create personal keys', 'not_a_person');
    const { org } = await this.access.own(actor, 'viewer');
    if (org.disable_personal_keys === 1) throw errors.forbidden('your organization\'s policy disables personal API key creation', 'personal_keys_disabled');
    const { row, key } = await this.store.transaction(async (repos) => {
      const issued = await this.issue(repos, { org, ownerType: 'user', ownerId: p.id, name: input.name, expiresInDays: input.expires_in_days, createdBy: p.id });
      await this.audit.record(repos, actor, { orgId: org.id, action: 'key.create', targetType: 'api_key', targetId: issued.row.id, targetName: issued.row.key_id, details: { owner: p.username, name: input.name, expires_at: issued.row.expires_at } });
      return issued;
    });
    return { ...keyView(row), key };
  }

  async listMine(actor: Actor): Promise<KeyView[]> {
    const p = actor.principal;
    if (p.type !== 'user') throw errors.forbidden('service accounts have no personal keys', 'not_a_person');
    return (await this.store.repos.keys.listForOwner(p.orgId, { ownerType: 'user', ownerId: p.id })).map(keyView);
  }

  /** A key the actor may manage, or 404 (a key it may not see does not exist for it). */
  private async manageable(actor: Actor, id: string): Promise<{ ctx: OrgContext; row: ApiKeyRow }> {
    const p = actor.principal;
    const ctx = await this.access.own(actor);
    const row = await this.store.repos.keys.findById(ctx.org.id, id);
    if (!row || row.revoked_at !== null) throw errors.notFound(`API key "${id}"`);
    if (p.type === 'service_account') throw errors.forbidden('service accounts cannot manage API keys', 'not_a_person');
    // Everyone manages their own keys (a viewer too: a key is how they read); org admins manage all.
    if (row.owner_type === 'user' && row.user_id === p.id) return { ctx, row };
    if (ctx.role === 'admin') return { ctx, row };
    const policy = this.policies.get(row.owner_type);
    if (row.owner_type !== 'user' && policy && (await policy(actor, ctx, row))) return { ctx, row };
    throw errors.notFound(`API key "${id}"`);
  }

  async get(actor: Actor, id: string): Promise<KeyView> {
    return keyView((await this.manageable(actor, id)).row);
  }

  async rotate(actor: Actor, id: string, graceSeconds: number): Promise<NewKeyView & { previous: KeyView }> {
    const { ctx, row } = await this.manageable(actor, id);
    const now = Date.now();
    const lifetimeDays = row.expires_at ? Math.max(1, Math.ceil((Date.parse(row.expires_at) - Date.parse(row.created_at)) / DAY_MS)) : undefined;
    const result = await this.store.transaction(async (repos) => {
      const fresh = await repos.keys.findById(ctx.org.id, row.id);
      if (!fresh || fresh.revoked_at !== null) throw errors.notFound(`API key "${id}"`);
      const cap = ctx.org.max_key_lifetime_days;
      const issued = await this.issue(repos, {
        org: ctx.org,
        ownerType: row.owner_type,
        ownerId: (row.owner_type === 'user' ? row.user_id : row.service_account_id)!,
        name: row.name,
        expiresInDays: lifetimeDays !== undefined && cap !== null ? Math.min(lifetimeDays, cap) : lifetimeDays,
        createdBy: actor.principal.id,
        rotatedFromId: row.id,
      });
      let previousExpiry = fresh.expires_at;
      if (graceSeconds === 0) {
        await repos.keys.revoke(ctx.org.id, row.id, new Date(now).toISOString());
      } else {
        const deadline = new Date(now + graceSeconds * 1000).toISOString();
        if (previousExpiry === null || previousExpiry > deadline) {
          await repos.keys.setExpiry(ctx.org.id, row.id, deadline);
          previousExpiry = deadline;
        }
      }
      await this.audit.record(repos, actor, {
        orgId: ctx.org.id,
        action: 'key.rotate',
        targetType: 'api_key',
        targetId: row.id,
        targetName: row.key_id,
        details: { new_key: issued.row.key_id, new_key_id: issued.row.id, grace_seconds: graceSeconds },
      });
      return { issued, previous: { ...fresh, expires_at: previousExpiry, revoked_at: graceSeconds === 0 ? new Date(now).toISOString() : null } };
    });
    this.invalidator.keyChanged(row.key_hash);
    return { ...keyView(result.issued.row), key: result.issued.key, previous: keyView(result.previous) };
  }

  async revoke(actor: Actor, id: string): Promise<void> {
    const { ctx, row } = await this.manageable(actor, id);
    await this.store.transaction(async (repos) => {
      if (!(await repos.keys.revoke(ctx.org.id, row.id, new Date().toISOString()))) throw errors.notFound(`API key "${id}"`);
      await this.audit.record(repos, actor, { orgId: ctx.org.id, action: 'key.revoke', targetType: 'api_key', targetId: row.id, targetName: row.key_id, details: { name: row.name, owner_type: row.owner_type } });
    });
    this.invalidator.keyChanged(row.key_hash);
  }
}
