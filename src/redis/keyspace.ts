/**
 * Where every Redis key and channel name is made: under TRACKGATE_REDIS_KEY_PREFIX, so deployments
 * (or test runs) sharing one Redis share no sessions, login attempts, counters nor invalidations. One
 * object, built once in src/core.ts and passed to whatever keeps something in Redis.
 */
export class RedisKeyspace {
  constructor(readonly prefix: string) {}

  /** The name of a key, a family of keys or a channel: `key('sess:')` is "<prefix>sess:". */
  key(name: string): string {
    return this.prefix + name;
  }
}
