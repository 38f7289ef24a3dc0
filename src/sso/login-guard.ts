import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import type { RedisKeyspace } from '../redis/keyspace.ts';
import { redisUnavailable } from '../redis/redis.ts';

/** Login starts per client address: each stores a login attempt, so they are counted (Redis when configured, shared by every instance). */
export class LoginStartLimiter {
  private readonly limiter: RateLimiterAbstract;

  constructor(options: { points: number; durationSeconds: number; redis?: Redis | null | undefined; keyspace: RedisKeyspace }) {
    const limits = { points: options.points, duration: options.durationSeconds };
    // rejectIfRedisNotReady: while Redis is down the insurance limiter counts at once, instead of each start waiting for Redis.
    this.limiter = options.redis
      ? new RateLimiterRedis({ storeClient: options.redis, keyPrefix: options.keyspace.loginStarts, ...limits, insuranceLimiter: new RateLimiterMemory(limits), rejectIfRedisNotReady: true })
      : new RateLimiterMemory(limits);
  }

  /** Counts one start; the seconds to wait when the address has none left, else null. */
  async take(ip: string): Promise<number | null> {
    try {
      await this.limiter.consume(ip);
      return null;
    } catch (res) {
      // With Redis down the insurance limiter counts in memory; anything else that fails is Redis's.
      if (!(res instanceof RateLimiterRes)) throw redisUnavailable(res, 'the login limiter (Redis)');
      return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    }
  }
}
