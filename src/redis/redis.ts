import { Redis } from 'ioredis';
import type { Logger } from '../log/logger.ts';

/**
 * The instance's Redis connection (sessions, login transactions, rate
 * limits) when TRACKGATE_REDIS_URL is set. Commands fail fast rather than
 * queue forever when Redis is down, so a request gets an answer.
 */
export function createRedis(url: string, logger: Logger, name: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true, connectionName: name, lazyConnect: false });
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
