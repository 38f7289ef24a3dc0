import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TransactionRow } from './sso.repository.ts';
import type { SsoRepository } from './sso.repository.ts';

export type LoginTransaction = TransactionRow;

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/**
 * Pending logins. Each attempt is its own record, keyed by the hash of its
 * `state` (the state itself is a bearer secret, so only its hash is stored),
 * single-use — take() removes it atomically — and expiring.
 */
export interface TransactionStore {
  put(tx: LoginTransaction, ttlSeconds: number): Promise<void>;
  take(stateHash: string): Promise<LoginTransaction | null>;
  sweep(): Promise<void>;
}

export class DbTransactionStore implements TransactionStore {
  constructor(private readonly repo: () => SsoRepository) {}

  async put(tx: LoginTransaction): Promise<void> {
    await this.repo().insertTransaction(tx);
  }

  async take(stateHash: string): Promise<LoginTransaction | null> {
    return (await this.repo().takeTransaction(stateHash)) ?? null;
  }

  async sweep(): Promise<void> {
    await this.repo().deleteExpiredTransactions(new Date().toISOString());
  }
}

/** The same on Redis when TRACKGATE_REDIS_URL is set: SET EX, then GETDEL (Redis ≥ 6.2) for single use. */
export class RedisTransactionStore implements TransactionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'trackgate:login-tx:',
  ) {}

  async put(tx: LoginTransaction, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.prefix + tx.state_hash, JSON.stringify(tx), 'EX', ttlSeconds);
  }

  async take(stateHash: string): Promise<LoginTransaction | null> {
    const v = await this.redis.getdel(this.prefix + stateHash);
    return v ? (JSON.parse(v) as LoginTransaction) : null;
  }

  async sweep(): Promise<void> {
    /* Redis expires keys itself. */
  }
}
