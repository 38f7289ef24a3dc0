import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { CacheInvalidator, InvalidationRepos } from '../auth/invalidation.ts';
import type { AuditRepository } from '../audit/audit.repository.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { isUniqueViolation, uniqueViolationTarget } from '../db/dialect.ts';
import type { Page, PageRequest } from '../db/keyset.ts';
import type { Store } from '../db/store.ts';
import { errors } from '../errors/app-error.ts';
import type { OrgAccess, OrgContext } from '../orgs/org-access.ts';
import type { OrgRow } from '../orgs/orgs.repository.ts';
import { generateKey } from './key-format.ts';
import type { ApiKeyRow, KeysRepository } from './keys.repository.ts';
import type { keyOut, newKeyOut } from './keys.responses.ts';

/**
 * What the key rules touch, in one transaction with their audit events. Whether an owner may hold keys is
 * the keys repository's own read (ownerActive), under the owner's lock.
 */
export interface KeysRepos extends InvalidationRepos {
  keys: KeysRepository;
  audit: AuditRepository;
}

const DAY_MS = 86_400_000;

function alreadyRotated(id: string, successorId: string | null) {
  return errors.conflict(`API key "${id}" was already rotated${successorId ? ` (its replacement is "${successorId}")` : ''}: a key is replaced once; rotate its replacement instead`, 'key_already_rotated');
}

/** The API's answers about keys: their response schemas' types, so that views and schemas cannot drift. */
export type KeyView = z.output<typeof keyOut>;
/** With the secret: shown in this response only. */
export type NewKeyView = z.output<typeof newKeyOut>;

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
  /** A rotation that revokes the key it replaces at once: the owner's count of live keys does not grow. */
  replacesLiveKey?: boolean;
}

export interface KeysOptions {
  /** Live keys one user or service account may hold (TRACKGATE_MAX_KEYS_PER_PRINCIPAL). */
  maxKeysPerPrincipal: number;
}

/**
 * Decides whether an actor may manage a key that is not its own personal key
 * (service-account keys are governed by team roles). Returns true to allow.
 */
export type KeyManagePolicy = (actor: Actor, ctx: OrgContext, row: ApiKeyRow) => Promise<boolean>;

export class KeysService {
  private readonly policies = new Map<string, KeyManagePolicy>();

  constructor(
    private readonly store: Store<KeysRepos>,
    private readonly access: OrgAccess,
    private readonly audit: AuditService,
    private readonly invalidator: CacheInvalidator,
    private readonly options: KeysOptions,
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

  /**
   * Creates a key row inside the caller's transaction and returns it with its
   * secret. Every way to get a key comes through here, so the cap on live keys
   * per owner holds for all of them; the owner's row lock makes concurrent
   * creations wait for each other, so a burst cannot overshoot the cap.
   */
  async issue(repos: Pick<KeysRepos, 'keys'>, input: IssueKeyInput): Promise<{ row: ApiKeyRow; key: string }> {
    const now = Date.now();
    const owner = { ownerType: input.ownerType, ownerId: input.ownerId };
    await repos.keys.lockOwner(owner);
    // Read again under the lock: a request authenticated a moment before the owner was deactivated (SCIM, an
    // admin) or deleted waits here for that change to commit, and must not mint a key that outlives it.
    if (!(await repos.keys.ownerActive(input.org.id, owner))) {
      throw input.ownerType === 'user'
        ? errors.conflict(`the owner of this key is deactivated: no key is issued or rotated for them${input.rotatedFromId ? ` (API key "${input.rotatedFromId}" cannot be rotated)` : ''}`, 'owner_deactivated')
        : errors.notFound('service account');
    }
    const live = await repos.keys.countLive(input.org.id, owner, new Date(now).toISOString());
    const cap = this.options.maxKeysPerPrincipal;
    if (live + (input.replacesLiveKey ? 0 : 1) > cap) {
      throw errors.conflict(
        `key limit reached: a ${input.ownerType === 'user' ? 'user' : 'service account'} may hold at most ${cap} live API keys (it has ${live}); revoke one first${input.rotatedFromId ? ', or rotate with grace_seconds 0' : ''}`,
        'key_limit_reached',
      );
    }
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

  async listMine(actor: Actor, page: PageRequest): Promise<Page<KeyView>> {
    const p = actor.principal;
    if (p.type !== 'user') throw errors.forbidden('service accounts have no personal keys', 'not_a_person');
    const rows = await this.store.repos.keys.listForOwner(p.orgId, { ownerType: 'user', ownerId: p.id }, page);
    return { items: rows.items.map(keyView), next: rows.next };
  }

  /** A key the actor may manage, or 404 (a key it may not see does not exist for it). */
  private async manageable(actor: Actor, id: string, options: { revoked?: boolean } = {}): Promise<{ ctx: OrgContext; row: ApiKeyRow }> {
    const p = actor.principal;
    // Before the lookup: the same answer whether the key exists or not, so a service account learns nothing of its organization's keys.
    if (p.type === 'service_account') throw errors.forbidden('service accounts cannot manage API keys', 'not_a_person');
    const ctx = await this.access.own(actor);
    const row = await this.store.repos.keys.findById(ctx.org.id, id);
    if (!row || (row.revoked_at !== null && !options.revoked)) throw errors.notFound(`API key "${id}"`);
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

  /** The organization's policies that govern keys of this owner type, as they stand now. */
  private static requireKeysAllowed(org: OrgRow, ownerType: 'user' | 'service_account'): void {
    if (ownerType === 'user' && org.disable_personal_keys === 1) throw errors.forbidden('your organization\'s policy disables personal API keys: a personal key cannot be rotated', 'personal_keys_disabled');
    if (ownerType === 'service_account' && org.plan !== 'enterprise') {
      throw errors.forbidden(`service accounts are an enterprise feature: organization "${org.slug}" is on the ${org.plan} plan`, 'enterprise_feature');
    }
  }

  /**
   * Replaces a key by a new one. Only a live key that was never rotated can be:
   * a key has at most one successor (else one key could mint any number of
   * keys, each with its own grace window), and an expired or revoked key
   * stays dead. The successor obeys the same policies as a new key.
   */
  async rotate(actor: Actor, id: string, graceSeconds: number, options: { expiresInDays?: number | undefined } = {}): Promise<NewKeyView & { previous: KeyView }> {
    const { ctx, row } = await this.manageable(actor, id, { revoked: true });
    KeysService.requireKeysAllowed(ctx.org, row.owner_type);
    const ownerId = row.owner_type === 'user' ? row.user_id : row.service_account_id;
    // issue() fills the owner's column; a row without it is corrupt, not rotatable.
    if (ownerId === null) throw new Error(`api key ${row.id}: owner_type ${row.owner_type} without its owner id`);
    const owner = { ownerType: row.owner_type, ownerId };
    let result: { issued: { row: ApiKeyRow; key: string }; previous: ApiKeyRow };
    try {
      result = await this.invalidator.transaction(this.store, async (repos, invalidate) => {
        // The owner's lock first: a concurrent rotation of the same key has then committed (or not begun), and the reads below see it.
        await repos.keys.lockOwner(owner);
        const now = Date.now();
        const fresh = await repos.keys.findById(ctx.org.id, row.id);
        if (!fresh) throw errors.notFound(`API key "${id}"`);
        if (fresh.revoked_at !== null) throw errors.conflict(`API key "${id}" is revoked: a revoked key cannot be rotated; create a new key instead`, 'key_revoked');
        if (fresh.expires_at !== null && Date.parse(fresh.expires_at) <= now) throw errors.conflict(`API key "${id}" has expired: an expired key cannot be rotated; create a new key instead`, 'key_expired');
        const successor = await repos.keys.findSuccessor(ctx.org.id, fresh.id);
        if (successor) throw alreadyRotated(id, successor.id);
        // A deactivated person's key is not rotated: issue() refuses, under the lock taken above (owner_deactivated).
        // Unless asked otherwise, the successor lives as long as its predecessor did, within the organization's maximum.
        const cap = ctx.org.max_key_lifetime_days;
        const lifetimeDays = fresh.expires_at ? Math.max(1, Math.ceil((Date.parse(fresh.expires_at) - Date.parse(fresh.created_at)) / DAY_MS)) : undefined;
        const expiresInDays = options.expiresInDays ?? (lifetimeDays !== undefined && cap !== null ? Math.min(lifetimeDays, cap) : lifetimeDays);
        const issued = await this.issue(repos, {
          org: ctx.org,
          ...owner,
          name: fresh.name,
          expiresInDays,
          createdBy: actor.principal.id,
          rotatedFromId: fresh.id,
          replacesLiveKey: graceSeconds === 0,
        });
        let previousExpiry = fresh.expires_at;
        if (graceSeconds === 0) {
          await repos.keys.revoke(ctx.org.id, fresh.id, new Date(now).toISOString());
        } else {
          const deadline = new Date(now + graceSeconds * 1000).toISOString();
          if (previousExpiry === null || previousExpiry > deadline) {
            await repos.keys.setExpiry(ctx.org.id, fresh.id, deadline);
            previousExpiry = deadline;
          }
        }
        await this.audit.record(repos, actor, {
          orgId: ctx.org.id,
          action: 'key.rotate',
          targetType: 'api_key',
          targetId: fresh.id,
          targetName: fresh.key_id,
          details: { new_key: issued.row.key_id, new_key_id: issued.row.id, grace_seconds: graceSeconds, expires_at: issued.row.expires_at },
        });
        // The old key changes (revoked, or a sooner expiry) as its cached entry does not know.
        invalidate.key(row.key_hash);
        return { issued, previous: { ...fresh, expires_at: previousExpiry, revoked_at: graceSeconds === 0 ? new Date(now).toISOString() : null } };
      });
    } catch (err) {
      // The unique index on rotated_from_id: a concurrent rotation of this key committed first.
      if (isUniqueViolation(err) && uniqueViolationTarget(err).includes('rotated_from')) throw alreadyRotated(id, null);
      throw err;
    }
    return { ...keyView(result.issued.row), key: result.issued.key, previous: keyView(result.previous) };
  }

  async revoke(actor: Actor, id: string): Promise<void> {
    const { ctx, row } = await this.manageable(actor, id);
    await this.invalidator.transaction(this.store, async (repos, invalidate) => {
      if (!(await repos.keys.revoke(ctx.org.id, row.id, new Date().toISOString()))) throw errors.notFound(`API key "${id}"`);
      await this.audit.record(repos, actor, { orgId: ctx.org.id, action: 'key.revoke', targetType: 'api_key', targetId: row.id, targetName: row.key_id, details: { name: row.name, owner_type: row.owner_type } });
      invalidate.key(row.key_hash);
    });
  }
}
