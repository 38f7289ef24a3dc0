import type { Redis } from 'ioredis';
import { hashSecret } from '../crypto/tokens.ts';
import { isUniqueViolation } from '../db/dialect.ts';
import type { RedisKeyspace } from '../redis/keyspace.ts';
import { redisUnavailable } from '../redis/redis.ts';
import type { TransactionRow } from './sso.repository.ts';
import type { SsoRepository } from './sso.repository.ts';

export type LoginTransaction = TransactionRow;

/** How a transaction's secrets are stored (state_hash, binding_hash, here and in Redis): base64url, as their rows have always been. */
export function hashTransactionSecret(value: string): string {
  return hashSecret(value, 'base64url');
}

/**
 * Pending logins. Each attempt is its own record, keyed by the hash of its
 * `state` (the state itself is a bearer secret, so only its hash is stored),
 * single-use — take() removes it atomically — and expiring. One browser (its
 * binding cookie) keeps at most `maxPerBinding` of them: put() drops the
 * oldest beyond that, so a script reusing one cookie cannot pile them up
 * (one without cookies meets the per-address start limit instead).
 */
export interface TransactionStore {
  put(tx: LoginTransaction, ttlSeconds: number): Promise<void>;
  take(stateHash: string): Promise<LoginTransaction | null>;
  /**
   * Marks `key` used until `expiresAt`; false when it already was (on any instance). A SAML assertion's ID
   * is claimed once: a replayed assertion, even within its validity, signs nobody in a second time.
   */
  claimOnce(key: string, expiresAt: Date): Promise<boolean>;
  sweep(): Promise<void>;
}

/** What a used marker holds where a transaction's fields have nothing to say. */
const USED_MARKER = 'used';

export class DbTransactionStore implements TransactionStore {
  constructor(
    private readonly repo: () => SsoRepository,
    private readonly maxPerBinding: number,
  ) {}

  async put(tx: LoginTransaction): Promise<void> {
    const repo = this.repo();
    await repo.insertTransaction(tx);
    await repo.trimTransactionsOfBinding(tx.binding_hash, this.maxPerBinding);
  }

  async take(stateHash: string): Promise<LoginTransaction | null> {
    return (await this.repo().takeTransaction(stateHash)) ?? null;
  }

  /** A row keyed by the key's hash, which the primary key makes unique; the sweep deletes it once expired. */
  async claimOnce(key: string, expiresAt: Date): Promise<boolean> {
    const now = new Date().toISOString();
    try {
      await this.repo().insertTransaction({
        state_hash: hashTransactionSecret(`used:${key}`),
        org_id: USED_MARKER,
        connection_id: USED_MARKER,
        nonce: USED_MARKER,
        code_verifier_sealed: null,
        return_to: '/',
        binding_hash: USED_MARKER,
        created_at: now,
        expires_at: expiresAt.toISOString(),
        test_of: null,
      });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async sweep(): Promise<void> {
    await this.repo().deleteExpiredTransactions(new Date().toISOString());
  }
}

/**
 * The same on Redis when TRACKGATE_REDIS_URL is set: SET EX, then GETDEL
 * (Redis ≥ 6.2) for single use. Keys are in the RedisKeyspace
 * (`<prefix>login-tx:<state hash>`, and `<prefix>login-tx-of:<binding hash>`,
 * a sorted set of one browser's attempts by start time), so deployments
 * sharing one Redis never see each other's attempts.
 */
export class RedisTransactionStore implements TransactionStore {
  private readonly txPrefix: string;
  private readonly bindingPrefix: string;

  constructor(
    private readonly redis: Redis,
    keyspace: RedisKeyspace,
    private readonly maxPerBinding: number,
  ) {
    this.txPrefix = keyspace.loginTransactions;
    this.bindingPrefix = keyspace.loginTransactionsOfBrowser;
  }

  put(tx: LoginTransaction, ttlSeconds: number): Promise<void> {
    return this.putIn(tx, ttlSeconds).catch((err: unknown) => {
      throw redisUnavailable(err, 'the sign-in store (Redis)');
    });
  }

  private async putIn(tx: LoginTransaction, ttlSeconds: number): Promise<void> {
    const of = this.bindingPrefix + tx.binding_hash;
    const [, , , older] = (await this.redis
      .multi()
      .set(this.txPrefix + tx.state_hash, JSON.stringify(tx), 'EX', ttlSeconds)
      .zadd(of, Date.parse(tx.created_at), tx.state_hash)
      .expire(of, ttlSeconds)
      // Everything but the newest maxPerBinding, oldest first.
      .zrange(of, 0, -(this.maxPerBinding + 1))
      .exec()) ?? [];
    const evicted = (older?.[1] as string[] | undefined) ?? [];
    if (evicted.length) {
      await this.redis
        .multi()
        .del(...evicted.map((h) => this.txPrefix + h))
        .zrem(of, ...evicted)
        .exec();
    }
  }

  async take(stateHash: string): Promise<LoginTransaction | null> {
    const v = await this.redis.getdel(this.txPrefix + stateHash).catch((err: unknown) => {
      throw redisUnavailable(err, 'the sign-in store (Redis)');
    });
    if (!v) return null;
    const tx = JSON.parse(v) as LoginTransaction;
    // The attempt is taken: its entry in the browser's list only bounds that list, and expires with it.
    await this.redis.zrem(this.bindingPrefix + tx.binding_hash, stateHash).catch(() => {});
    return tx;
  }

  async claimOnce(key: string, expiresAt: Date): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
    const r = await this.redis.set(`${this.txPrefix}used:${hashTransactionSecret(key)}`, USED_MARKER, 'EX', ttl, 'NX').catch((err: unknown) => {
      throw redisUnavailable(err, 'the sign-in store (Redis)');
    });
    return r === 'OK';
  }

  async sweep(): Promise<void> {
    /* Redis expires keys itself. */
  }
}
