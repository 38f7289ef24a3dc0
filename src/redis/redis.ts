import { Redis } from 'ioredis';
import { errors, isUnavailable } from '../errors/app-error.ts';
import type { AppError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';

/**
 * The instance's Redis connection (sessions, login transactions, rate
 * limits) when TRACKGATE_REDIS_URL is set. Commands fail fast rather than
 * queue forever when Redis is down, so a request gets an answer; with
 * `commandTimeoutMs` (TRACKGATE_REDIS_TIMEOUT_MS) a Redis that neither answers
 * nor refuses (a partition) fails the command too. The pub/sub subscriber is
 * made without it: a subscription has no answer to wait for.
 */
export function createRedis(url: string, logger: Logger, name: string, options: { commandTimeoutMs?: number } = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true, connectionName: name, lazyConnect: false, commandTimeout: options.commandTimeoutMs });
  let warned = false;
  redis.on('error', (err: Error) => {
    if (!warned) logger.warn({ err: err.message, connection: name }, 'redis connection error');
    warned = true;
  });
  redis.on('ready', () => {
    warned = false;
  });
  return redis;
}

export async function closeRedis(redis: Redis | null): Promise<void> {
  if (!redis) return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/**
 * What a failed Redis command becomes where it reaches the rest of the code (the session store, login
 * attempts, the login limiter): `unavailable` naming Redis, the client's error as its cause. A Redis that
 * is down, restarting or too slow is one fact for a client: try again shortly.
 */
export function redisUnavailable(err: unknown, what = 'the session store (Redis)'): AppError {
  if (isUnavailable(err)) return err;
  return errors.unavailable(what, err);
}
