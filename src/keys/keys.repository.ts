import type { Kysely, Selectable } from 'kysely';
import { keysetPage } from '../db/keyset.ts';
import type { Keyset, Page, PageRequest } from '../db/keyset.ts';
import type { ApiKeysTable, KeyOwnerTables, KeysTables } from './keys.tables.ts';

/** The key tables, and of the owners' tables only what lockOwner touches (the owners' folders depend on this one). */
type KeysDB = KeysTables & KeyOwnerTables;

/** Keys per transaction of a last-used flush (see touchLastUsed). */
const LAST_USED_CHUNK = 100;

export type ApiKeyRow = Selectable<ApiKeysTable>;

/** Oldest first; created_at ties are broken by the id, so the order is total and never changes. */
const KEYS_ORDER: Keyset<ApiKeyRow> = { columns: ['created_at', 'id'], direction: 'asc', keyOf: (r) => [r.created_at, r.id] };

export interface KeyOwnerRef {
  ownerType: 'user' | 'service_account';
  ownerId: string;
}

/**
 * Storage of API keys. Every method but findByHash is scoped to an
 * organization; findByHash is the credential lookup itself, where the key's
 * hash is what tells which organization it belongs to.
 */
export class KeysRepository {
  constructor(private readonly db: Kysely<KeysDB>) {}

  async insert(row: ApiKeyRow, trx: Kysely<KeysDB> = this.db): Promise<void> {
    await trx.insertInto('api_keys').values(row).execute();
  }

  async findByHash(hash: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
  }

  async findById(orgId: string, id: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** Keys of one owner that are not revoked (expired ones are listed so people see them lapse), a page at a time. */
  async listForOwner(orgId: string, owner: KeyOwnerRef, page: PageRequest): Promise<Page<ApiKeyRow>> {
    const column = owner.ownerType === 'user' ? 'user_id' : 'service_account_id';
    const q = this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('owner_type', '=', owner.ownerType)
      .where(column, '=', owner.ownerId)
      .where('revoked_at', 'is', null);
    return keysetPage(q, KEYS_ORDER, page);
  }

  /**
   * Takes the owner's row lock until the transaction ends, so that two
   * transactions creating keys for one owner run one after the other and a
   * count of its keys stays true until the insert. (A no-op update locks the
   * row on PostgreSQL; SQLite transactions begin with the write lock already.)
   */
  async lockOwner(owner: KeyOwnerRef): Promise<void> {
    if (owner.ownerType === 'user') {
      await this.db.updateTable('users').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('id', '=', owner.ownerId).execute();
    } else {
      await this.db.updateTable('service_accounts').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('id', '=', owner.ownerId).execute();
    }
  }

  /** Whether the owner may hold keys now: a person who is active, a service account that exists. Read under lockOwner's lock. */
  async ownerActive(orgId: string, owner: KeyOwnerRef): Promise<boolean> {
    if (owner.ownerType === 'user') {
      const u = await this.db.selectFrom('users').select('status').where('org_id', '=', orgId).where('id', '=', owner.ownerId).executeTakeFirst();
      return u?.status === 'active';
    }
    return (await this.db.selectFrom('service_accounts').select('id').where('org_id', '=', orgId).where('id', '=', owner.ownerId).executeTakeFirst()) !== undefined;
  }

  /** Keys of one owner that still work or will (neither revoked nor expired at `now`). */
  async countLive(orgId: string, owner: KeyOwnerRef, now: string): Promise<number> {
    const column = owner.ownerType === 'user' ? 'user_id' : 'service_account_id';
    const r = await this.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('org_id', '=', orgId)
      .where('owner_type', '=', owner.ownerType)
      .where(column, '=', owner.ownerId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** The key a rotation of this one created, if any (there is at most one: a unique index). */
  async findSuccessor(orgId: string, id: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId).where('rotated_from_id', '=', id).executeTakeFirst();
  }

  async revoke(orgId: string, id: string, at: string, trx: Kysely<KeysDB> = this.db): Promise<boolean> {
    const res = await trx
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Revokes every live key of an owner; returns their hashes so caches can drop them. One key at a
   * time in id order, like a last-used flush (touchLastUsed): one UPDATE of all of them locked their
   * rows in whatever order the plan read them, and deadlocked with a flush of the same keys, which
   * PostgreSQL ended only at the statement timeout (a deprovisioning answered 503 right after the
   * person's keys were used). An owner holds a handful of keys.
   */
  async revokeAllForOwner(orgId: string, owner: KeyOwnerRef, at: string, trx: Kysely<KeysDB> = this.db): Promise<string[]> {
    const column = owner.ownerType === 'user' ? 'user_id' : 'service_account_id';
    const rows = await trx
      .selectFrom('api_keys')
      .select(['id', 'key_hash'])
      .where('org_id', '=', orgId)
      .where(column, '=', owner.ownerId)
      .where('revoked_at', 'is', null)
      .orderBy('id')
      .execute();
    const revoked: string[] = [];
    for (const r of rows) if (await this.revoke(orgId, r.id, at, trx)) revoked.push(r.key_hash);
    return revoked;
  }

  async setExpiry(orgId: string, id: string, expiresAt: string, trx: Kysely<KeysDB> = this.db): Promise<void> {
    await trx.updateTable('api_keys').set({ expires_at: expiresAt }).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  /** Writes a batch of last-used times; never moves a time backwards. */
  /**
   * Records last-used times in short transactions of at most LAST_USED_CHUNK keys, each in key-id
   * order: several instances flush at once, and revocations and rotations lock one key row each. One
   * transaction over a whole flush (thousands of keys under load) held its row locks for seconds, so a
   * revocation waited past the statement timeout (503), and two flushes taking rows in different
   * orders deadlocked (40P01). Sorted, small chunks can neither deadlock each other nor hold a row long.
   */
  async touchLastUsed(entries: Array<{ id: string; at: string }>): Promise<void> {
    if (entries.length === 0) return;
    const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (let i = 0; i < sorted.length; i += LAST_USED_CHUNK) {
      const chunk = sorted.slice(i, i + LAST_USED_CHUNK);
      await this.db.transaction().execute(async (trx) => {
        for (const e of chunk) {
          await trx
            .updateTable('api_keys')
            .set({ last_used_at: e.at })
            .where('id', '=', e.id)
            .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', e.at)]))
            .execute();
        }
      });
    }
  }

  async countAll(): Promise<number> {
    const r = await this.db.selectFrom('api_keys').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
